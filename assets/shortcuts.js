// Ctrl+Enter (Cmd+Enter on macOS) submits a multi-line prompt; Gradio's own binding
// for multi-line boxes is Shift+Enter, which keeps working too.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const targets = { "text-prompt": "text-generate", "image-prompt": "image-generate" };
  for (const [box, button] of Object.entries(targets)) {
    if (event.target.closest && event.target.closest("#" + box)) {
      event.preventDefault();
      document.getElementById(button)?.click();
    }
  }
});
