// Language switch for gr.I18n. Gradio picks the page language from navigator.language when
// it starts, before this head script runs, and changes it only through its own settings
// panel, which calls changeLocale() from its core module. The choice is kept in
// localStorage and in the URL (?lang=zh), which the server reads for the messages it writes
// (aigc_demo/ui/i18n.py). On load, if it differs from the browser's language, this script
// imports Gradio's core module (already loaded: an ES module import by URL returns the live
// instance) and calls changeLocale() before anything else has happened on the page.
// The header's "English · 中文" links reload the page: Gradio 6.31 keeps a component that
// has received an update from the server (a Generate button shown again) in the language of
// that moment, so an in-place switch after the first generation would leave a mixed page.
// Reloading clears what is on screen (ratings are already saved), so it asks first then.
(function () {
  var KEY = "aigc-lang";
  function valid(lang) { return lang === "zh" || lang === "en"; }
  function tagFor(lang) { return lang === "zh" ? "zh-CN" : "en"; }
  function chosen() {
    var lang = new URLSearchParams(window.location.search).get("lang");
    if (valid(lang)) return lang;
    try { lang = localStorage.getItem(KEY); } catch (e) { lang = null; }
    return valid(lang) ? lang : null;
  }
  function remember(lang) {
    try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode */ }
    var params = new URLSearchParams(window.location.search);
    if (params.get("lang") !== lang) {
      params.set("lang", lang);
      history.replaceState(null, "", "?" + params.toString() + window.location.hash);
    }
  }
  function coreModule() {
    var names = performance.getEntriesByType("resource").map(function (e) { return e.name; });
    var url = names.filter(function (n) { return /\/assets\/core-[^/?]+\.js(\?|$)/.test(n); })[0];
    return url ? import(url) : Promise.reject(new Error("Gradio core module not loaded yet"));
  }
  // Gradio 6.31 translates a tab's header only when that tab is rendered, so after a
  // change the headers of tabs not yet visited would keep the old language: set them from
  // the app's own translations (the tab with id X uses the key "tab_X").
  var current = null;
  function translateTabHeaders() {
    if (!current) return;
    var table = ((window.gradio_config || {}).i18n_translations || {})[current] || {};
    document.querySelectorAll("[role=tab][data-tab-id]").forEach(function (button) {
      var text = table["tab_" + button.getAttribute("data-tab-id")];
      if (text && button.textContent !== text) button.textContent = text;
    });
  }
  // Gradio 6.31 titles a toast with its type in English ("Warning") whatever the locale
  // and ignores gr.Warning(title=...): use the app's word (keys "toast_<type>").
  function translateToasts() {
    var lang = current || shown;
    var table = ((window.gradio_config || {}).i18n_translations || {})[lang] || {};
    document.querySelectorAll(".toast-title").forEach(function (title) {
      var node = title.firstChild;
      if (!node || node.nodeType !== 3) return;
      var text = table["toast_" + node.nodeValue.trim().toLowerCase()];
      if (text && node.nodeValue.trim() !== text) node.nodeValue = text + " ";
    });
  }
  // Gradio 6.31 writes a few words in English whatever the locale: the status line over a
  // running event ("processing |", "queue: 2/3 |") and some button labels. Keys "gr_<...>".
  var LABELS = {
    "Copy message": "gr_copy_message", "Copied message": "gr_copied_message",
    "Copy conversation": "gr_copy_conversation", "Copied conversation": "gr_copied_conversation",
    "Copy": "gr_copy", "Copied": "gr_copied", "Reset to default value": "gr_reset",
    "Click to upload or drop files": "gr_upload", "Empty value": "gr_empty", "chatbot conversation": "gr_chatbot",
    "Copy table data": "gr_copy_table", "Fullscreen": "gr_fullscreen", "Table actions": "gr_table_actions",
    "Gradio footer navigation": "gr_footer", "Download": "gr_download", "Exit fullscreen mode": "gr_exit_fullscreen",
    "Clear": "gr_clear", "Textbox": "gr_textbox", "common.complete": "gr_complete", "undo": "gr_undo",
    "Vega visualization": "gr_chart", "Download All": "gr_download_all",
  };
  // Labels with a part that varies: the key's text has {1}, {2} for the captured parts.
  var PATTERNS = [
    [/^number input for (.*)$/, "gr_number_input_for"], [/^range slider for (.*)$/, "gr_range_slider_for"],
    [/^Thumbnail (\d+) of (\d+)$/, "gr_thumbnail"], [/^Title text '(.*)'$/, "gr_chart_title"],
    [/^X-axis titled '(.*?)' for .*$/, "gr_x_axis"], [/^Y-axis titled '(.*?)' for .*$/, "gr_y_axis"],
  ];
  function translated(value, table) {
    if (LABELS[value] && table[LABELS[value]]) return table[LABELS[value]];
    for (var i = 0; i < PATTERNS.length; i++) {
      var match = PATTERNS[i][0].exec(value), text = table[PATTERNS[i][1]];
      if (match && text) return text.replace("{1}", match[1]).replace("{2}", match[2] || "");
    }
    return null;
  }
  function translateChrome() {
    var lang = current || shown;
    var table = ((window.gradio_config || {}).i18n_translations || {})[lang] || {};
    document.querySelectorAll(".progress-text, .meta-text, .meta-text-center").forEach(function (box) {
      box.childNodes.forEach(function (node) {
        if (node.nodeType !== 3) return;
        var text = node.nodeValue, out = text;
        // "41.2/39.8s": once the elapsed time passes Gradio's estimate, the estimate says
        // nothing true; show the elapsed time alone.
        var timer = /^(\s*)(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)s\s*$/.exec(text);
        if (timer && parseFloat(timer[2]) > parseFloat(timer[3])) out = timer[1] + timer[2] + "s";
        if (lang !== "zh") { if (out !== text) node.nodeValue = out; return; }
        if (/^\s*processing \|/.test(text) && table.gr_processing) out = text.replace("processing", table.gr_processing);
        var queued = /^\s*queue: (\d+)\/(\d*) \|/.exec(text);
        if (queued && table.gr_queue) out = table.gr_queue.replace("{n}", queued[1]).replace("{total}", queued[2] || "?") + " |";
        if (out !== text) node.nodeValue = out;
      });
    });
    if (lang !== "zh") return;
    document.querySelectorAll("[aria-label], [title]").forEach(function (el) {
      ["aria-label", "title"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        var text = value && translated(value, table);
        if (text) el.setAttribute(attr, text);
      });
      // A choice's tooltip is its stored value ("off-topic"): show its label instead.
      if (el.type === "checkbox" && el.title && el.closest("label") && el.closest("label").innerText.trim()) {
        el.title = el.closest("label").innerText.trim();
      }
    });
    document.querySelectorAll(".sr-only").forEach(function (el) {
      var node = el.firstChild;
      var text = node && node.nodeType === 3 && translated(node.nodeValue.trim(), table);
      if (text) node.nodeValue = text;
    });
  }
  // Tabs mount after this runs and may re-render: keep their headers in the chosen language.
  var pending = false;
  new MutationObserver(function () {
    if (pending) return;
    pending = true;  // at most once a frame, however many nodes a stream changes
    requestAnimationFrame(function () { pending = false; translateTabHeaders(); translateToasts(); translateChrome(); });
  }).observe(document.documentElement, {
    childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["aria-label", "title"],
  });
  function apply(lang, tries) {
    return coreModule().then(function (core) {
      if (typeof core.changeLocale !== "function") throw new Error("no changeLocale");
      core.changeLocale(tagFor(lang));
      document.documentElement.lang = tagFor(lang);
      current = lang;
      translateTabHeaders();
    }).catch(function (err) {
      if (tries > 0) {
        return new Promise(function (r) { setTimeout(r, 150); }).then(function () { return apply(lang, tries - 1); });
      }
      throw err;
    });
  }
  var browser = (navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var initial = chosen();
  if (initial) {
    remember(initial);
    if (initial !== browser) apply(initial, 60).catch(function () {});
  }
  var shown = initial || browser;  // the page's language
  var used = false;  // has this page produced anything a reload would clear?
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href^='?lang=']");
    if (!link) {
      if (event.target.closest && event.target.closest("button:not([role=tab])")) used = true;
      return;
    }
    event.preventDefault();
    var lang = new URLSearchParams(link.getAttribute("href").slice(1)).get("lang");
    if (!valid(lang) || lang === shown) return;
    var ask = "Switch language? The page reloads and the results on screen are cleared (your ratings are saved).\n" +
      "切换语言？页面将刷新，屏幕上的结果会清空（评分已保存）。";
    if (used && !window.confirm(ask)) return;
    remember(lang);
    window.location.reload();
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.closest && event.target.closest("textarea, input")) used = true;
  }, true);
})();
