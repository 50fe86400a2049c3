"""English and Chinese for every UI string: ``gr.I18n`` for the page, ``tr`` for messages.

Static text (labels, buttons, placeholders, headings) is an ``I18nData`` key that the
browser translates: Gradio picks the locale from ``navigator.language``. The header's
language switch reloads the page with ``?lang=zh`` / ``?lang=en`` (remembered in
localStorage); ``assets/lang.js``, in the page head, makes ``navigator.language`` say
that before Gradio reads it. Text made on the server for one request (rating status,
stats lines, warnings) is translated by :func:`tr` in the language of :func:`lang_of`:
the ``lang`` URL parameter, else the browser's ``Accept-Language``.

Keys are snake_case words (no dots: the front end would read them as nested paths).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import gradio as gr

from aigc_demo.services.support.policy import GREETING, HANDOFF_REASONS

# key: (English, 中文). Messages may hold {named} fields, filled by tr().
STRINGS: dict[str, tuple[str, str]] = {
    # Header and tabs
    "app_tagline": (
        "Text, images and customer service on pretrained models — "
        "rate every output with 👍/👎 to make the next version better.",
        "基于预训练模型的文本、图像与智能客服 —— 为每个结果点 👍/👎，帮助下一版做得更好。",
    ),
    "tab_text": ("✍️ Text", "✍️ 文本"),
    "tab_image": ("🎨 Image", "🎨 图像"),
    "tab_support": ("💬 Support", "💬 客服"),
    "tab_arena": ("⚔️ Arena", "⚔️ 竞技"),
    "tab_insights": ("📊 Insights", "📊 洞察"),
    "meta_line": (
        "<small>profile **{profile}** · v{version}</small>",
        "<small>配置 **{profile}** · v{version}</small>",
    ),
    "session_line": ("<small>session `{code}`</small>", "<small>会话 `{code}`</small>"),
    # Toast titles, set in the page by assets/lang.js (Gradio writes the toast type in English).
    "toast_warning": ("Warning", "提示"),
    "toast_error": ("Error", "错误"),
    "toast_info": ("Info", "信息"),
    "toast_success": ("Success", "成功"),
    # Gradio's own words that it leaves in English (translated in the page by assets/lang.js).
    "gr_processing": ("processing", "生成中"),
    "gr_queue": ("queue: {n}/{total}", "排队中：第 {n} 位，共 {total} 位"),
    "gr_copy_message": ("Copy message", "复制消息"),
    "gr_copied_message": ("Copied message", "已复制消息"),
    "gr_copy_conversation": ("Copy conversation", "复制整段对话"),
    "gr_copied_conversation": ("Copied conversation", "已复制整段对话"),
    "gr_copy": ("Copy", "复制"),
    "gr_copied": ("Copied", "已复制"),
    "stop_placeholder": ("e.g. \\n\\n|END", "例如 \\n\\n|END"),
    "filter_all": ("all", "全部"),
    "filter_text": ("text", "文本"),
    "filter_image": ("image", "图像"),
    "filter_support": ("support", "客服"),
    # Built-in image styles (assets/styles.csv) and size presets; other names show as written.
    "style_None": ("None", "无"),
    "style_Photographic": ("Photographic", "摄影"),
    "style_Product shot": ("Product shot", "产品图"),
    "style_Illustration": ("Illustration", "插画"),
    "style_Watercolor": ("Watercolor", "水彩"),
    "style_Anime": ("Anime", "动漫"),
    "style_3D render": ("3D render", "3D 渲染"),
    "size_Square 256": ("Square 256", "正方形 256"),
    "size_Square 512": ("Square 512", "正方形 512"),
    "size_Square 768": ("Square 768", "正方形 768"),
    "size_Square 1024": ("Square 1024", "正方形 1024"),
    "size_Portrait 512×768": ("Portrait 512×768", "竖图 512×768"),
    "size_Landscape 768×512": ("Landscape 768×512", "横图 768×512"),
    "size_Wide 1024×576": ("Wide 1024×576", "宽屏 1024×576"),
    "size_Tall 576×1024": ("Tall 576×1024", "长竖图 576×1024"),
    # Shared
    "prompt": ("Prompt", "提示词"),
    "parameters": ("Parameters", "参数"),
    "generate": ("✨ Generate", "✨ 生成"),
    "stop": ("⏹ Stop", "⏹ 停止"),
    "seed_random": ("Seed (−1 = random)", "随机种子（−1 = 随机）"),
    "try_one": ("Try one", "试试这些"),
    "admin_token": ("Admin token", "管理员令牌"),
    # Rating widget
    "rate_up": ("👍 Good", "👍 好"),
    "rate_down": ("👎 Bad", "👎 差"),
    "rate_comment": ("Optional comment: what was good or wrong?", "可选评论：哪里好，哪里不好？"),
    "rate_first": ("Generate something first, then rate it.", "请先生成内容，再评分。"),
    "rate_not_saved": ("Rating not saved: {reason}", "评分未保存：{reason}"),
    "rate_saved": ("{icon} Saved — thank you!", "{icon} 已保存，谢谢！"),
    "rate_updated": (
        "{icon} Saved, with your reasons and comment — thank you!",
        "{icon} 已保存（含理由和评论），谢谢！",
    ),
    "reason_inaccurate": ("inaccurate", "不准确"),
    "reason_off-topic": ("off-topic", "答非所问"),
    "reason_unsafe": ("unsafe", "不安全"),
    "reason_low quality": ("low quality", "质量差"),
    "reason_too slow": ("too slow", "太慢"),
    "reason_great": ("great", "很棒"),
    "rate_image_n": (" — image {n}", " —— 第 {n} 张"),
    # Text tab
    "preset_free": ("Free-form", "自由输入"),
    "preset_marketing": ("Marketing copy", "营销文案"),
    "preset_product": ("Product description", "商品描述"),
    "preset_summary": ("Summary", "摘要"),
    "preset_translate": ("Translate zh↔en", "中英互译"),
    "preset_email": ("Email reply", "邮件回复"),
    "preset_social": ("Social post", "社交媒体帖子"),
    "preset_slogan": ("Slogan", "口号"),
    "preset_poem": ("Poem", "诗歌"),
    "text_chat_placeholder": (
        (
            "Answers appear here. Ask a follow-up in the box: the conversation goes with it. "
            "✏️ edit a question, ↻ ask again, ▶ continue a cut answer."
        ),
        "回答会显示在这里。在左侧接着追问即可，模型会带上整段对话。✏️ 编辑问题，↻ 重新回答，▶ 继续写被截断的回答。",
    ),
    # Gradio's screen-reader labels and tooltips it leaves in English (assets/lang.js).
    "gr_number_input_for": ("number input for {1}", "数字输入：{1}"),
    "gr_range_slider_for": ("range slider for {1}", "滑块：{1}"),
    "gr_thumbnail": ("Thumbnail {1} of {2}", "缩略图 {1} / {2}"),
    "gr_chart_title": ("Title text '{1}'", "图表标题：{1}"),
    "gr_chart": ("Vega visualization", "图表"),
    "gr_x_axis": ("X-axis titled '{1}'", "横轴：{1}"),
    "gr_y_axis": ("Y-axis titled '{1}'", "纵轴：{1}"),
    "gr_download_all": ("Download All", "全部下载"),
    "gr_undo": ("undo", "撤销"),
    "gr_reset": ("Reset to default value", "恢复默认值"),
    "gr_upload": ("Click to upload or drop files", "点击上传或拖入文件"),
    "gr_empty": ("Empty value", "空"),
    "gr_chatbot": ("chatbot conversation", "对话记录"),
    "gr_copy_table": ("Copy table data", "复制表格数据"),
    "gr_fullscreen": ("Fullscreen", "全屏"),
    "gr_table_actions": ("Table actions", "表格操作"),
    "gr_footer": ("Gradio footer navigation", "页脚导航"),
    "gr_textbox": ("Textbox", "文本框"),
    "gr_complete": ("common.complete", "完成"),
    "gr_download": ("Download", "下载"),
    "gr_exit_fullscreen": ("Exit fullscreen mode", "退出全屏"),
    "gr_clear": ("Clear", "清除"),
    "scenario": ("Scenario", "场景"),
    "model": ("Model", "模型"),
    "text_placeholder": (
        "Describe what to write… (Ctrl+Enter or Shift+Enter to generate)",
        "描述你想写的内容……（Ctrl+Enter 或 Shift+Enter 生成）",
    ),
    "new_seed": ("🔄 New seed", "🔄 换个种子"),
    "max_new_tokens": ("Max new tokens", "最大生成长度（token）"),
    "temperature": ("Temperature (0 = greedy)", "温度（0 = 贪心）"),
    "top_p": ("Top-p", "Top-p"),
    "stop_strings": ("Stop strings (separate with |)", "停止词（用 | 分隔）"),
    "system_prompt": (
        "System prompt (advanced; empty = the scenario's own)",
        "系统提示词（高级；留空 = 使用场景自带）",
    ),
    "mode": ("Mode", "模式"),
    "mode_chat": ("Chat (instruction)", "对话（指令）"),
    "mode_continue": ("Continue my text (base models)", "续写我的文本（基础模型）"),
    "mode_info": (
        "Chat sends the whole conversation; raw continuation reads the prompt alone.",
        "对话模式会带上整段对话；续写模式只读取本次提示词。",
    ),
    "continue_answer": ("▶ Continue the answer", "▶ 继续写"),
    # Text models by a human name (ids stay the values: API, records, AIGC_TEXT_MODELS)
    "model_qwen_coder_05b": ("Qwen2.5-Coder 0.5B · Chinese", "Qwen2.5-Coder 0.5B（中文）"),
    "model_smollm2_135m": ("SmolLM2 135M · fast, English only", "SmolLM2 135M（快速，仅英文）"),
    "model_gemma3_270m": ("Gemma 3 270M · base model, continues text", "Gemma 3 270M（基础模型，只会续写）"),
    "small_model_note": (
        "ℹ️ A small model running on this server's CPU: fluent, but it makes factual slips and "
        "sometimes repeats itself — check facts before you use an answer.",
        "ℹ️ 这是在本机 CPU 上运行的小模型：表达流畅，但可能出现事实错误或重复——使用前请核对事实。",
    ),
    "loading_model": ("⏳ Loading `{model}` (first use only)…", "⏳ 正在加载 `{model}`（仅首次）……"),
    "stats_tokens": ("{n} tokens", "{n} 个 token"),
    "stats_first": ("first token {s:.2f}s", "首 token {s:.2f} 秒"),
    "stats_speed": ("{v:.1f} tok/s", "{v:.1f} token/秒"),
    "stats_total": ("{s:.1f}s total", "共 {s:.1f} 秒"),
    "stats_seed": ("seed {seed}", "种子 {seed}"),
    "stopped": ("⏹ stopped", "⏹ 已停止"),
    "loop_cut": ("⟲ stopped where the model began repeating itself", "⟲ 模型开始重复，已在重复处停止"),
    "truncated": (
        "✂️ cut at the length limit (“Continue the answer” writes on)",
        "✂️ 已达长度上限被截断（点“继续写”接着写完）",
    ),
    # Arena tab
    "arena_intro": (
        "Two anonymous answers to the same prompt. Pick the better one — who was who is shown after your vote.",
        "同一个提示词的两个匿名回答，选出更好的一个 —— 投票后揭晓双方身份。",
    ),
    "arena_kind_text": ("✍️ Text", "✍️ 文本"),
    "arena_kind_image": ("🎨 Image", "🎨 图像"),
    "arena_placeholder": ("Type a prompt, e.g. a slogan for a tea shop", "输入提示词，例如：为茶饮店写一句广告语"),
    "arena_start": ("⚔️ Battle", "⚔️ 开始对战"),
    "arena_vote_a": ("👈 A is better", "👈 A 更好"),
    "arena_vote_tie": ("🤝 Tie", "🤝 平局"),
    "arena_vote_bad": ("👎 Both bad", "👎 都不好"),
    "arena_vote_b": ("B is better 👉", "B 更好 👉"),
    "arena_why": ("Why? (optional)", "原因（可选）"),
    "arena_reason_accuracy": ("more accurate", "更准确"),
    "arena_reason_style": ("better style", "文风更好"),
    "arena_reason_length": ("better length", "长度更合适"),
    "arena_reason_safety": ("safer", "更安全"),
    "arena_reason_detail": ("more detail", "更具体"),
    "arena_drawing": ("⏳ Two contestants are answering…", "⏳ 两位选手正在作答……"),
    "arena_ready": ("Both answers are in: which is better?", "两个回答都已生成：哪个更好？"),
    "arena_placeholder_both": (
        "⚠️ Both sides are the offline placeholder image model (abstract noise, not pictures): this vote "
        "compares steps and guidance only. The host can set `AIGC_IMAGE_MODEL` to a real model.",
        "⚠️ 两边都是离线占位图像模型（抽象噪声，不是真实图片）：这次投票只比较步数和引导系数。"
        "主持人可设置 `AIGC_IMAGE_MODEL` 使用真实模型。",
    ),
    "arena_first": ("Start a battle first.", "请先开始一场对战。"),
    "arena_saved": (
        "✅ Vote saved: **{choice}**. Thank you! Who was who:",
        "✅ 投票已保存：**{choice}**。谢谢！双方身份：",
    ),
    "arena_already": (
        "This pair already has a vote (**{choice}**); one vote per pair.",
        "这组对战已经投过票（**{choice}**），每组只计一票。",
    ),
    "arena_choice_a": ("A is better", "A 更好"),
    "arena_choice_b": ("B is better", "B 更好"),
    "arena_choice_tie": ("tie", "平局"),
    "arena_choice_both_bad": ("both bad", "都不好"),
    # Image tab
    "negative_prompt": ("Negative prompt", "反向提示词"),
    "image_placeholder": (
        "A cozy reading nook, warm light… (Ctrl+Enter to generate)",
        "温暖灯光下的舒适阅读角……（Ctrl+Enter 生成）",
    ),
    "negative_placeholder": ("blurry, low quality", "模糊，低质量"),
    "style": ("Style", "风格"),
    "size_preset": ("Size preset", "尺寸预设"),
    "image_generate": ("🎨 Generate", "🎨 生成"),
    "width": ("Width", "宽度"),
    "height": ("Height", "高度"),
    "steps": ("Steps", "步数"),
    "guidance": ("Guidance scale", "引导系数"),
    "reuse_seed": ("♻️ last", "♻️ 上次"),
    "use_settings": ("📋 Use this image's settings", "📋 用这张图的设置"),
    "recipe_from_png": ("🧾 Read the settings of a PNG", "🧾 从 PNG 读取生成参数"),
    "recipe_drop": (
        "Drop a PNG made here or with AUTOMATIC1111 / Fooocus: "
        "its prompt, seed, size, steps and guidance fill the form",
        "拖入本应用或 AUTOMATIC1111 / Fooocus 生成的 PNG：提示词、种子、尺寸、步数和引导系数会自动填入",
    ),
    "recipe_applied": ("Filled in: {fields}.", "已填入：{fields}。"),
    "recipe_adjusted": ("Brought inside this server's limits: {fields}.", "已按本服务器的上限调整：{fields}。"),
    "recipe_unknown_style": (
        "Style “{style}” is not offered here; left as it was.",
        "本应用没有风格“{style}”，保持不变。",
    ),
    "recipe_other_model": (
        "It was made with {model}; this server's model differs.",
        "原图由 {model} 生成，与本服务器的模型不同。",
    ),
    "field_prompt": ("prompt", "提示词"),
    "field_seed": ("seed", "种子"),
    "field_width": ("size", "尺寸"),
    "field_steps": ("steps", "步数"),
    "field_guidance_scale": ("guidance", "引导系数"),
    "field_style": ("style", "风格"),
    "num_images": ("Images", "张数"),
    "gallery": ("Result — click an image to rate it alone", "结果 —— 点选单张图片可单独评分"),
    "history": ("This session", "本次会话"),
    # For testers: what they see and what still counts. The operator's how-to is in the README.
    "placeholder_banner": (
        (
            "⚠️ **Demo image model.** This demo makes abstract patterns, not real pictures, and style choices barely "
            "show on them. Everything else is real — prompt, size, steps, seed, progress and your 👍/👎 — so please "
            "try the controls and rate what you see."
        ),
        (
            "⚠️ **演示用图像模型。** 本演示生成的是抽象图案而不是真实图片，风格选项在上面几乎看不出差别。"
            "其余都是真实的 —— 提示词、尺寸、步数、种子、进度和您的 👍/👎 —— 欢迎试用各项设置并为看到的结果评分。"
        ),
    ),
    "loading_image_model": ("Loading the image model (first use only)…", "正在加载图像模型（仅首次）……"),
    "step_n": ("Step {step}/{total}", "第 {step}/{total} 步"),
    "image_done": ("✅ seed **{seeds}** · {s:.1f}s · `{model}`", "✅ 种子 **{seeds}** · {s:.1f} 秒 · `{model}`"),
    "image_placeholder_note": (" · placeholder model (abstract noise)", " · 占位模型（抽象噪声）"),
    "image_pick_hint": (" · 👆 click an image to rate it alone", " · 👆 点选一张图片可单独评分"),
    "image_caption": ("seed {seed}", "种子 {seed}"),
    "image_selected": (
        "Rating image {n} alone — or click 👍/👎 right away.",
        "正在单独评价第 {n} 张 —— 直接点 👍/👎 即可。",
    ),
    # Support tab
    "assistant": ("Lumen Store assistant", "流明商城客服"),
    "support_placeholder": ("Ask about shipping, returns, payment…", "请输入您的问题：配送、退货、支付……"),
    "send": ("Send", "发送"),
    "support_reason_placeholder": (
        "Optional: why? Tick reasons / add a comment, then 👍/👎 (or “Add comment”)",
        "可选：原因？勾选理由或写评论，再点 👍/👎（或“添加评论”）",
    ),
    "add_comment": ("Add comment", "添加评论"),
    "kb_loading": ("⏳ Loading the knowledge base (first question only)…", "⏳ 正在加载知识库（仅首个问题）……"),
    "support_greeting": (GREETING["en"], GREETING["zh"]),
    "rate_answer_first": (
        "Rate an answer with 👍 or 👎 first, then add your comment.",
        "请先用 👍 或 👎 评价一条回答，再添加评论。",
    ),
    "type_comment": ("Type a comment first.", "请先输入评论。"),
    "with_comment": (" (with your comment)", "（含评论）"),
    "kb_add": ("Add to the knowledge base", "添加到知识库"),
    "kb_replace": ("Replace it", "替换知识库"),
    "wrong_token": ("Wrong or missing admin token.", "管理员令牌错误或缺失。"),
    "kb_summary": (
        "📚 **{n} entries** from {files} · verified answers: {verified}",
        "📚 **{n} 条**，来自 {files} · {verified} 条已验证回答",
    ),
    "kb_skipped": ("⚠️ Skipped:", "⚠️ 已跳过："),
    "choose_files": ("Choose one or more knowledge files first.", "请先选择一个或多个知识库文件。"),
    "new_conversation": ("🗑 New conversation", "🗑 新对话"),
    "suggested": ("Suggested questions", "常见问题"),
    "kb_admin": ("Knowledge base, gaps & handoff queue (admin)", "知识库、缺口与转人工工单（管理员）"),
    "uploaded_files": ("Uploaded files", "上传文件"),
    "kb_files": (
        "CSV / JSONL (question, answer, optional id, category, url) or Markdown / TXT",
        "CSV / JSONL（question、answer，可选 id、category、url）或 Markdown / TXT",
    ),
    "load_files": ("Load files", "载入文件"),
    "kb_reset": ("Back to the bundled knowledge base", "恢复内置知识库"),
    "show_gaps": ("Show knowledge gaps", "查看知识缺口"),
    "handoff_queue": ("Handoff queue", "转人工工单"),
    "sources": ("Sources", "来源"),
    "verified_answer": ("verified answer", "已验证答案"),
    "handoff_queue_title": ("### 🎫 Handoff queue", "### 🎫 转人工工单"),
    "show_open": ("Open tickets", "待处理工单"),
    "show_resolved": ("Resolved tickets", "已处理工单"),
    "ticket": ("Ticket number", "工单号"),
    "open_ticket": ("Open ticket", "打开工单"),
    "resolution": ("Resolution (what you told the customer)", "处理结果（回复客户的内容）"),
    "save_as_answer": ("Save as a verified knowledge-base answer", "保存为知识库的已验证答案"),
    "answer_question": ("Question the answer is for (edit to make it general)", "答案对应的问题（可改写得更通用）"),
    "resolve": ("Resolve", "标记已处理"),
    "no_tickets": ("no tickets", "暂无工单"),
    "ticket_status_open": ("open", "待处理"),
    "ticket_status_resolved": ("resolved", "已解决"),
    # The team's name for each handoff reason lives with the reason (support/policy.py).
    **{f"handoff_reason_{key}": (r.label["en"], r.label["zh"]) for key, r in HANDOFF_REASONS.items()},
    "skipped_records": (
        "⚠️ {n} stored lines were not read (damaged, too long or of an unexpected shape): "
        "`python -m aigc_demo feedback verify` lists them.",
        "⚠️ 有 {n} 行记录未被读取（损坏、过长或格式不符）：运行 `python -m aigc_demo feedback verify` 查看。",
    ),
    "storage_failures": (
        "⚠️ **Records not saved since the app started:** {items}. Check the disk; see also /healthz.",
        "⚠️ **自启动以来有记录未能保存：** {items}。请检查磁盘；也可查看 /healthz。",
    ),
    "handoffs_insights": (
        "Handoffs in this period (newest 50; answer them in 💬 Support → admin)",
        "本时段的转人工工单（最新 50 条；请在 💬 客服 → 管理 中处理）",
    ),
    "resolved_ok": ("✅ {ticket} resolved.", "✅ 工单 {ticket} 已处理。"),
    "resolved_saved": (
        " Saved as KB entry `{entry}`: the next customer asking this gets it.",
        "已保存为知识库条目 `{entry}`，之后的客户提问会直接得到这个答案。",
    ),
    "col_ticket": ("ticket", "工单号"),
    "col_status": ("status", "状态"),
    "col_reason": ("reason", "原因"),
    "col_summary": ("summary", "摘要"),
    # Insights tab
    "tab_filter": ("Tab", "页面"),
    "from_date": ("From (UTC date)", "起始日期（UTC）"),
    "to_date": ("To (UTC date)", "截止日期（UTC）"),
    "session_filter": ("Session", "会话"),
    "variant": ("Variant", "实验组"),
    "refresh": ("🔄 Show / refresh", "🔄 显示 / 刷新"),
    "by_tab": ("Like-rate by tab (95 % Wilson interval)", "各页面好评率（95 % Wilson 区间）"),
    "by_model": ("Like-rate by model", "各模型好评率"),
    "by_variant": ("Like-rate by variant", "各实验组好评率"),
    "recent_down": ("Recent 👎", "最近的 👎"),
    "recent_down_images": ("Recent 👎 images", "最近 👎 的图片"),
    "gaps": ("Support knowledge gaps", "客服知识缺口"),
    "export_format": ("Export format", "导出格式"),
    "format_sft": ("SFT — 👍 answers as training pairs (JSONL)", "SFT —— 👍 回答作为训练样本（JSONL）"),
    "format_dpo": ("DPO — preferred vs rejected answers (JSONL)", "DPO —— 好/差回答偏好对（JSONL）"),
    "format_kto": ("KTO — each answer with 👍/👎 (JSONL)", "KTO —— 每条回答及其 👍/👎（JSONL）"),
    "format_csv": ("CSV — every rating, for a spreadsheet", "CSV —— 全部评分，可用表格打开"),
    "format_parquet": ("Parquet — every rating, for pandas", "Parquet —— 全部评分，供 pandas 分析"),
    "export": ("⬇️ Export", "⬇️ 导出"),
    "session_report": ("📝 Session report (uses the Session filter)", "📝 会话报告（使用“会话”筛选）"),
    "download": ("Download", "下载"),
    "rows_exported": ("{n} rows exported", "已导出 {n} 行"),
    "trend": ("Like-rate per day", "每日好评率"),
    "axis_day": ("day", "日期"),
    "axis_like_rate": ("like-rate", "好评率"),
    "insights_totals": (
        "**{gen}** generations · **{rated}** rated outputs (👍 {up} / 👎 {down}) · "
        "like-rate **{rate}** · {sessions} sessions",
        "**{gen}** 次生成 · **{rated}** 个输出已评分（👍 {up} / 👎 {down}）· 好评率 **{rate}** · {sessions} 个会话",
    ),
    "insights_ci": ("95 % CI", "95 % 置信区间"),
    "coverage": ("Coverage: {cov}", "评分覆盖率：{cov}"),
    "coverage_item": ("{tab}: {rated}/{gen} rated", "{tab}：{rated}/{gen} 已评分"),
    "col_group": ("group", "分组"),
    "col_contestant": ("contestant", "参赛配置"),
    "col_rating": ("rating (Elo)", "评分（Elo）"),
    "col_battles": ("battles", "对战数"),
    "col_wins": ("wins", "胜"),
    "col_ties": ("ties", "平"),
    "col_win_rate": ("win rate", "胜率"),
    "arena_leaderboard": (
        "⚔️ Arena leaderboard (Bradley–Terry, Elo scale, bootstrap 95 % interval)",
        "⚔️ 竞技场排行榜（Bradley–Terry 模型，Elo 分制，自助法 95 % 区间）",
    ),
    "col_up": ("👍", "👍"),
    "col_down": ("👎", "👎"),
    "col_n": ("rated", "数量"),
    "col_like_rate": ("like-rate", "好评率"),
    "col_ci_low": ("95 % low", "区间下限"),
    "col_ci_high": ("95 % high", "区间上限"),
    "col_when": ("when", "时间"),
    "col_tab": ("tab", "页面"),
    "col_prompt": ("prompt", "提示词"),
    "col_output": ("output", "输出"),
    "col_comment": ("comment", "评论"),
    "col_reasons": ("reasons", "理由"),
    "col_sources": ("sources", "来源"),
    "col_kind": ("kind", "类型"),
    "col_question": ("question", "问题"),
    "col_answer": ("answer", "回答"),
    "no_gaps": ("no gaps yet", "暂无缺口"),
    "gap_downvoted": ("👎 answer", "被点踩的回答"),
    "gap_handoff": ("handed off: not in the knowledge base", "已转人工：知识库中没有"),
    "need_session": ("Type a session code in the Session filter first.", "请先在“会话”筛选中输入会话码。"),
    "admin_disabled": (
        "🔒 Admin tools are off. Start the app with `AIGC_ADMIN_TOKEN=<a secret>` to enable them, "
        "then enter that token here.",
        "🔒 管理功能未开启。请用 `AIGC_ADMIN_TOKEN=<密钥>` 启动应用，然后在此输入该令牌。",
    ),
    # Errors the UI adds
}

I18N = gr.I18n(en={k: v[0] for k, v in STRINGS.items()}, zh={k: v[1] for k, v in STRINGS.items()})


def T(key: str) -> Any:
    """A page string, translated in the browser."""
    if key not in STRINGS:
        raise KeyError(f"no UI string {key!r} in aigc_demo/ui/i18n.py")
    return I18N(key)


def normalize_lang(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    if value.startswith("zh"):
        return "zh"
    if value.startswith("en"):
        return "en"
    return None


def lang_of(request: Any) -> str:
    """The language of one request: ``?lang=`` of the request or of the page that sent it
    (the Referer: a queue-join request does not carry the page's parameters), else the
    first supported Accept-Language."""
    if request is None:
        return "en"
    try:
        headers = dict(request.headers)
        referer = parse_qs(urlsplit(headers.get("referer", "")).query)
        chosen = normalize_lang(dict(request.query_params).get("lang") or (referer.get("lang") or [""])[0])
        if chosen:
            return chosen
        header = headers.get("accept-language", "")
    except Exception:  # noqa: BLE001 - a request without those parts
        return "en"
    for part in header.split(","):
        chosen = normalize_lang(part.split(";")[0])
        if chosen:
            return chosen
    return "en"


def table(rows: list[list[Any]], columns: list[str], lang: str) -> Any:
    """A Dataframe value whose column headers are in ``lang`` (keys ``col_<name>``)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=[tr(f"col_{c}", lang) for c in columns])


def label(prefix: str, name: str) -> Any:
    """A choice label: translated if the name is a known one (``style_Watercolor``), else as written."""
    return T(f"{prefix}_{name}") if f"{prefix}_{name}" in STRINGS else name


# Packaged text models (ids without an engine prefix) → their name's key above.
MODEL_LABELS = {
    "packaged:qwen2.5-coder-0.5b-instruct": "model_qwen_coder_05b",
    "packaged:smollm2-135m-instruct": "model_smollm2_135m",
    "packaged:gemma3-270m": "model_gemma3_270m",
}


def model_label(model_id: str) -> Any:
    """A text model's name for a dropdown: a human name for a packaged one; any other id (a Hub
    id, one with an explicit engine prefix) as it is, so two engines of one model stay apart."""
    key = MODEL_LABELS.get(model_id)
    return T(key) if key else model_id


def is_small_model(model_id: str) -> bool:
    """The packaged models are all small enough that a note on their limits is owed."""
    return any(model_id.endswith(known) for known in MODEL_LABELS)


def tr(key: str, lang: str = "en", **fields: Any) -> str:
    """A server-made message in ``lang`` (en / zh), with ``fields`` filled in."""
    en, zh = STRINGS[key]
    return (zh if lang == "zh" else en).format(**fields)
