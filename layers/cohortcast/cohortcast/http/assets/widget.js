/*! cohortcast in-app widget: a launcher with an unread badge and a panel of the user's posts.
 * Embed: <script src="…/widget.js" data-write-key="…" data-user-id="…" data-user-hash="…" async></script>
 * API: cohortcast.open(), cohortcast.close(), cohortcast.on("unread", fn), cohortcast.off("unread", fn).
 * It calls only the feed API (the script's own base URL, or data-api), and lives in an open Shadow
 * DOM so the host page's CSS and this widget's CSS never meet. */
(function () {
  "use strict";
  if (window.cohortcast && window.cohortcast.version) return; // the tag is on the page twice

  var script =
    document.currentScript || document.querySelector("script[data-write-key][src*='widget.js']");
  if (!script) return;
  var config = {
    writeKey: script.getAttribute("data-write-key") || "",
    userId: script.getAttribute("data-user-id") || "",
    userHash: script.getAttribute("data-user-hash") || "",
  };
  // The API sits where the script came from (a stage path included), unless data-api says otherwise.
  var apiOverride = script.getAttribute("data-api");
  var apiBase = apiOverride
    ? new URL(apiOverride.replace(/\/?$/, "/"), location.href)
    : new URL(".", script.src);

  var TITLE = "What's new";
  var REACTIONS = [
    { value: "up", label: "Thumbs up", icon: "M2 21h3V9H2zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6V3a1.5 1.5 0 0 0-.4-1L13.2 1 7 7.6A2 2 0 0 0 6.5 9v10a2 2 0 0 0 2 2h9a2 2 0 0 0 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7z" },
    { value: "down", label: "Thumbs down", icon: "M22 3h-3v12h3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6V21c0 .4.2.8.4 1l1.1 1 6.2-6.6c.3-.3.5-.8.5-1.4V5a2 2 0 0 0-2-2h-9a2 2 0 0 0-1.8 1.2l-3 7.1c-.1.2-.2.5-.2.7z" },
    { value: "love", label: "Love", icon: "M12 21.3l-1.4-1.3C5.4 15.4 2 12.3 2 8.5 2 5.4 4.4 3 7.5 3c1.7 0 3.4.8 4.5 2.1C13.1 3.8 14.8 3 16.5 3 19.6 3 22 5.4 22 8.5c0 3.8-3.4 6.9-8.6 11.5z" },
  ];
  var BELL = "M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6V11c0-3.1-1.6-5.6-4.5-6.3V4a1.5 1.5 0 0 0-3 0v.7C7.6 5.4 6 7.9 6 11v5l-2 2v1h16v-1z";
  var CROSS = "M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z";
  var MESSAGES = {
    loading: "Loading…",
    empty: "Nothing new yet.",
    failed: "News can't be shown right now. Please try again later.",
    reactionFailed: "Your reaction could not be saved. Please try again.",
    commentSent: "Thanks for your comment!",
    commentFailed: "Your comment could not be sent. Please try again.",
  };
  var FOCUSABLE = "button:not([disabled]), a[href], textarea:not([disabled]), input:not([disabled]), select, [tabindex]:not([tabindex='-1'])";

  var CSS =
    ":host{all:initial!important;display:block!important;position:fixed!important;top:0!important;left:0!important;width:0!important;height:0!important;z-index:2147483000!important}" +
    "[hidden]{display:none!important}" +
    ".cc,.cc *,.cc *::before,.cc *::after{box-sizing:border-box}" +
    ".cc{font:400 14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#111827;text-align:left;letter-spacing:normal;word-spacing:normal;text-transform:none;text-indent:0;white-space:normal;visibility:visible}" +
    "button{font:inherit;color:inherit;margin:0;cursor:pointer;text-transform:none}" +
    "svg{display:block;fill:currentColor;flex:none}" +
    ":focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}" +
    ".launcher{position:fixed;right:20px;bottom:20px;display:flex;align-items:center;justify-content:center;width:52px;height:52px;padding:0;border:0;border-radius:50%;background:#1d4ed8;color:#fff;box-shadow:0 4px 14px rgba(17,24,39,.3)}" +
    ".launcher:hover{background:#1e40af}" +
    ".launcher:focus-visible{box-shadow:0 0 0 2px #fff,0 4px 14px rgba(17,24,39,.3)}" +
    ".launcher svg{width:26px;height:26px}" +
    ".badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border:2px solid #fff;border-radius:11px;background:#b91c1c;color:#fff;font-size:12px;font-weight:700;line-height:18px;text-align:center}" +
    ".backdrop{position:fixed;inset:0;background:rgba(17,24,39,.25)}" +
    ".panel{position:fixed;right:20px;bottom:84px;display:flex;flex-direction:column;width:380px;max-height:min(640px,calc(100vh - 104px));background:#fff;border-radius:12px;box-shadow:0 12px 40px rgba(17,24,39,.35);overflow:hidden}" +
    "@media (max-width:480px){.panel{inset:0;width:100%;max-height:none;border-radius:0}}" +
    ".head{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:12px 12px 12px 16px;border-bottom:1px solid #e5e7eb}" +
    "h2{margin:0;font-size:16px;font-weight:700;line-height:1.3;color:#111827}" +
    ".close{display:flex;align-items:center;justify-content:center;width:36px;height:36px;padding:0;border:0;border-radius:8px;background:transparent;color:#374151}" +
    ".close:hover{background:#f3f4f6}.close svg{width:20px;height:20px}" +
    ".scroll{flex:1 1 auto;overflow-y:auto;overscroll-behavior:contain}" +
    ".status{margin:0;padding:24px 16px;color:#4b5563;text-align:center}.status:empty{display:none}" +
    "ol{margin:0;padding:0;list-style:none}" +
    ".post{padding:16px;border-bottom:1px solid #e5e7eb}" +
    ".post.unread{box-shadow:inset 3px 0 0 #1d4ed8}" +
    ".meta{display:flex;flex-wrap:wrap;align-items:center;gap:6px;font-size:12px;line-height:1.4;color:#4b5563}" +
    ".chip{padding:1px 8px;border-radius:999px;background:#dbeafe;color:#1e3a8a;font-weight:600}" +
    ".chip.pin{background:#fef3c7;color:#78350f}" +
    ".sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}" +
    ".image{display:block;width:100%;height:auto;margin:10px 0 0;border-radius:8px}" +
    "h3{margin:8px 0 4px;font-size:15px;font-weight:700;line-height:1.35;color:#111827}" +
    ".body{color:#1f2937;overflow-wrap:anywhere}.body>:first-child{margin-top:0}.body>:last-child{margin-bottom:0}" +
    ".body p,.body ul,.body ol,.body blockquote,.body pre,.body table{margin:0 0 8px}" +
    ".body ul,.body ol{padding-left:20px;list-style:revert}" +
    ".body a{color:#1d4ed8;text-decoration:underline}" +
    ".body img{max-width:100%;height:auto}" +
    ".body pre{overflow-x:auto;padding:8px;background:#f3f4f6;border-radius:6px}" +
    ".body code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}" +
    ".body blockquote{padding-left:10px;border-left:3px solid #d1d5db;color:#374151}" +
    ".body table{border-collapse:collapse}.body th,.body td{padding:4px 8px;border:1px solid #e5e7eb}" +
    ".cta{display:inline-block;margin-top:10px;padding:8px 14px;border-radius:8px;background:#1d4ed8;color:#fff;font-weight:600;text-decoration:none}" +
    ".cta:hover{background:#1e40af}" +
    ".actions{display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin-top:12px}" +
    ".reactions{display:flex;gap:8px}" +
    ".react{display:flex;align-items:center;justify-content:center;min-width:44px;height:36px;padding:0 12px;border:1px solid #d1d5db;border-radius:999px;background:#fff;color:#374151}" +
    ".react svg{width:18px;height:18px}.react:hover{background:#f3f4f6}" +
    ".react[aria-pressed=true]{border-color:#1d4ed8;background:#dbeafe;color:#1e3a8a}" +
    ".link{padding:6px 4px;border:0;background:transparent;color:#1d4ed8;text-decoration:underline}" +
    ".comment{display:flex;flex-direction:column;gap:6px;margin-top:10px}" +
    ".comment label{font-size:13px;font-weight:600;color:#374151}" +
    "textarea{width:100%;min-height:64px;padding:8px;border:1px solid #6b7280;border-radius:6px;background:#fff;color:#111827;font:inherit;resize:vertical}" +
    ".send{align-self:flex-start;padding:6px 14px;border:0;border-radius:8px;background:#1d4ed8;color:#fff;font-weight:600}" +
    ".note{margin:8px 0 0;font-size:13px;color:#374151}.note:empty{display:none}" +
    ".more{display:block;margin:12px auto;padding:8px 16px;border:1px solid #d1d5db;border-radius:8px;background:#fff;color:#1d4ed8;font-weight:600}";

  var listeners = { unread: [] };
  var state = { unread: null, nextCursor: null, open: false, loadSeq: 0 };
  var ui = null; // the shadow root's elements, once mounted
  var pendingOpen = false;

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (name === "text") node.textContent = value;
      else if (value !== false && value != null) node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function icon(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.appendChild(shape);
    return svg;
  }

  // -- the feed API ----------------------------------------------------------------------------

  function api(method, path, body) {
    var url = new URL(path, apiBase);
    if (method === "GET") url.searchParams.set("userId", config.userId);
    var headers = {
      Authorization: "Basic " + btoa(config.writeKey + ":"),
      "X-Cohortcast-User-Hash": config.userHash,
    };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(url.href, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(Object.assign({ userId: config.userId }, body)) : undefined,
      credentials: "omit",
      mode: "cors",
    }).then(function (response) {
      if (!response.ok) throw new Error("cohortcast: HTTP " + response.status);
      return response.json();
    });
  }

  // -- unread count and its listeners ----------------------------------------------------------

  function setUnread(count) {
    if (count === state.unread) return;
    state.unread = count;
    if (ui) renderBadge();
    listeners.unread.slice().forEach(function (fn) {
      notify(fn, count);
    });
  }

  function notify(fn, count) {
    try {
      fn(count);
    } catch (err) {
      console.warn("cohortcast: an unread listener threw", err); // the host's bug, kept out of ours
    }
  }

  function refreshUnread() {
    api("GET", "v1/feed/unread")
      .then(function (answer) {
        setUnread(answer.unread);
      })
      .catch(function () {}); // the badge simply stays as it was
  }

  function renderBadge() {
    var count = state.unread || 0;
    ui.badge.hidden = count === 0;
    ui.badge.textContent = count > 99 ? "99+" : String(count);
    ui.launcher.setAttribute("aria-label", count ? TITLE + ", " + count + " unread" : TITLE);
  }

  // -- posts -----------------------------------------------------------------------------------

  function relativeTime(date, now) {
    var seconds = (date.getTime() - now) / 1000;
    var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
    var format = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1]) return format.format(Math.trunc(seconds / units[i][1]), units[i][0]);
    }
    return format.format(0, "second");
  }

  function isWebUrl(url) {
    return /^https?:\/\//i.test(url || "");
  }

  function renderPost(item, index) {
    var headingId = "cc-post-" + index;
    var published = new Date(item.published_at);
    var meta = element("div", { class: "meta" }, [
      item.pinned ? element("span", { class: "chip pin", text: "Pinned" }) : null,
      !item.read ? element("span", { class: "sr", text: "Unread" }) : null,
    ]);
    (item.labels || []).forEach(function (label) {
      meta.appendChild(element("span", { class: "chip", text: label }));
    });
    meta.appendChild(
      element("time", {
        datetime: item.published_at,
        title: published.toLocaleString("en", { dateStyle: "long", timeStyle: "short" }),
        text: relativeTime(published, Date.now()),
      })
    );
    var body = element("div", { class: "body" });
    body.innerHTML = item.html; // sanitised by the API, and confined to this shadow root
    var note = element("p", { class: "note", role: "status" });
    var article = element("article", { "aria-labelledby": headingId }, [
      meta,
      isWebUrl(item.image_url) ? element("img", { class: "image", src: item.image_url, alt: "", loading: "lazy" }) : null,
      element("h3", { id: headingId, text: item.title }),
      body,
      item.cta && isWebUrl(item.cta.url)
        ? element("a", { class: "cta", href: item.cta.url, target: "_blank", rel: "noopener noreferrer", text: item.cta.label })
        : null,
      renderActions(item, note),
      note,
    ]);
    return element("li", { class: item.read ? "post" : "post unread" }, [article]);
  }

  function renderActions(item, note) {
    var group = element("div", { class: "reactions", role: "group", "aria-label": "Your reaction to " + item.title });
    var buttons = REACTIONS.map(function (reaction) {
      var button = element("button", { type: "button", class: "react", "aria-label": reaction.label }, [icon(reaction.icon)]);
      button.addEventListener("click", function () {
        if (item.reaction === reaction.value) return; // one reaction, changeable, never removed
        var previous = item.reaction;
        item.reaction = reaction.value; // shown at once, undone if the API refuses
        note.textContent = "";
        sync();
        saveReaction(item, reaction.value, null).catch(function () {
          item.reaction = previous;
          note.textContent = MESSAGES.reactionFailed;
          sync();
        });
      });
      group.appendChild(button);
      return button;
    });
    var commentToggle = element("button", { type: "button", class: "link", "aria-expanded": "false", text: "Add a comment" });
    var form = renderCommentForm(item, note, function () {
      toggleForm(false);
      commentToggle.focus();
    });
    function toggleForm(shown) {
      form.hidden = !shown;
      commentToggle.setAttribute("aria-expanded", String(shown));
      if (shown) form.querySelector("textarea").focus();
    }
    commentToggle.addEventListener("click", function () {
      toggleForm(form.hidden);
    });
    function sync() {
      buttons.forEach(function (button, i) {
        button.setAttribute("aria-pressed", String(REACTIONS[i].value === item.reaction));
      });
      commentToggle.hidden = !item.reaction; // a comment goes with a reaction
    }
    form.hidden = true;
    sync();
    return element("div", {}, [element("div", { class: "actions" }, [group, commentToggle]), form]);
  }

  function renderCommentForm(item, note, sent) {
    var fieldId = "cc-comment-" + item.id;
    var textarea = element("textarea", { id: fieldId, maxlength: "1000", rows: "3" });
    var form = element("form", { class: "comment" }, [
      element("label", { for: fieldId, text: "Your comment" }),
      textarea,
      element("button", { type: "submit", class: "send", text: "Send" }),
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = textarea.value.trim();
      if (!text || !item.reaction) return;
      saveReaction(item, item.reaction, text).then(
        function () {
          textarea.value = "";
          sent();
          note.textContent = MESSAGES.commentSent;
        },
        function () {
          note.textContent = MESSAGES.commentFailed;
        }
      );
    });
    return form;
  }

  function saveReaction(item, reaction, comment) {
    var body = { reaction: reaction };
    if (comment) body.comment = comment; // without one, the previous comment stays
    return api("POST", "v1/feed/" + encodeURIComponent(item.id) + "/reaction", body);
  }

  // A post is read once it has been rendered in the open panel: one POST per unread post shown.
  function markRead(items) {
    var unread = items.filter(function (item) {
      return !item.read;
    });
    if (!unread.length || !state.open) return;
    Promise.all(
      unread.map(function (item) {
        return api("POST", "v1/feed/" + encodeURIComponent(item.id) + "/read", {}).then(
          function () {
            item.read = true;
            return 1;
          },
          function () {
            return 0;
          }
        );
      })
    ).then(function (marked) {
      var done = marked.reduce(function (a, b) {
        return a + b;
      }, 0);
      if (done) setUnread(Math.max(0, (state.unread || 0) - done));
    });
  }

  function showStatus(message) {
    ui.status.textContent = message;
  }

  function load(cursor) {
    var seq = ++state.loadSeq;
    if (!cursor) {
      ui.list.textContent = "";
      showStatus(MESSAGES.loading);
    }
    ui.more.hidden = true;
    var path = "v1/feed" + (cursor ? "?cursor=" + encodeURIComponent(cursor) : "");
    api("GET", path)
      .then(function (page) {
        if (seq !== state.loadSeq) return; // a newer load replaced this one
        var offset = ui.list.children.length;
        page.items.forEach(function (item, i) {
          ui.list.appendChild(renderPost(item, offset + i));
        });
        showStatus(ui.list.children.length ? "" : MESSAGES.empty);
        state.nextCursor = page.next_cursor;
        ui.more.hidden = !page.next_cursor;
        setUnread(page.unread);
        markRead(page.items);
      })
      .catch(function () {
        if (seq !== state.loadSeq) return;
        showStatus(MESSAGES.failed);
      });
  }

  // -- the dialog ------------------------------------------------------------------------------

  function focusables() {
    return Array.prototype.filter.call(ui.panel.querySelectorAll(FOCUSABLE), function (node) {
      return node.getClientRects().length > 0;
    });
  }

  function open() {
    if (!ui) {
      pendingOpen = true;
      return;
    }
    if (state.open) return;
    state.open = true;
    ui.backdrop.hidden = false;
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.close.focus();
    load(null);
  }

  function close() {
    pendingOpen = false;
    if (!ui || !state.open) return;
    state.open = false;
    ui.backdrop.hidden = true;
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  // While open the panel is modal: Tab and Shift+Tab cycle inside it, Escape closes it.
  function onKeydown(event) {
    if (!state.open) return;
    if (event.key === "Escape") {
      event.preventDefault();
      close();
      return;
    }
    if (event.key !== "Tab") return;
    var nodes = focusables();
    var at = nodes.indexOf(ui.root.activeElement);
    var wrap = event.shiftKey ? (at <= 0 ? nodes[nodes.length - 1] : null) : at === -1 || at === nodes.length - 1 ? nodes[0] : null;
    if (wrap) {
      event.preventDefault();
      wrap.focus();
    }
  }

  function mount() {
    var host = document.createElement("cohortcast-widget");
    var root = host.attachShadow({ mode: "open" });
    var launcher = element(
      "button",
      { type: "button", class: "launcher", "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": "cc-panel", "aria-label": TITLE },
      [icon(BELL)]
    );
    var badge = element("span", { class: "badge", "aria-hidden": "true", hidden: true });
    launcher.appendChild(badge);
    var closeButton = element("button", { type: "button", class: "close", "aria-label": "Close" }, [icon(CROSS)]);
    var status = element("p", { class: "status", role: "status" });
    var list = element("ol", { "aria-labelledby": "cc-title" });
    var more = element("button", { type: "button", class: "more", text: "Load more", hidden: true });
    var panel = element(
      "div",
      { id: "cc-panel", class: "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "cc-title", hidden: true },
      [
        element("div", { class: "head" }, [element("h2", { id: "cc-title", text: TITLE }), closeButton]),
        element("div", { class: "scroll" }, [status, list, more]),
      ]
    );
    var backdrop = element("div", { class: "backdrop", hidden: true });
    root.appendChild(element("style", { text: CSS }));
    root.appendChild(element("div", { class: "cc" }, [launcher, backdrop, panel]));
    ui = { root: root, host: host, launcher: launcher, badge: badge, close: closeButton, status: status, list: list, more: more, panel: panel, backdrop: backdrop };

    launcher.addEventListener("click", function () {
      if (state.open) close();
      else open();
    });
    closeButton.addEventListener("click", close);
    backdrop.addEventListener("click", close);
    more.addEventListener("click", function () {
      load(state.nextCursor);
      closeButton.focus(); // the button hides while the next page loads
    });
    document.addEventListener("keydown", onKeydown, true);
    // aria-modal: focus that lands on the page while the panel is open comes back into it.
    document.addEventListener("focusin", function (event) {
      if (state.open && event.target !== host) ui.close.focus();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !state.open) refreshUnread();
    });
    document.body.appendChild(host);
    renderBadge();
    if (pendingOpen) open();
  }

  function on(name, fn) {
    if (!listeners[name] || typeof fn !== "function") return;
    listeners[name].push(fn);
    if (state.unread !== null) notify(fn, state.unread);
  }

  function off(name, fn) {
    if (listeners[name]) listeners[name] = listeners[name].filter(function (f) { return f !== fn; });
  }

  window.cohortcast = { version: "1", open: open, close: close, on: on, off: off };
  if (!config.writeKey || !config.userId || !config.userHash) {
    console.warn("cohortcast: the widget needs data-write-key, data-user-id and data-user-hash");
    return;
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
  refreshUnread();
})();
