// The workbench's keyboard and htmx glue. No inline script anywhere (CSP script-src 'self').
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx sends the CSRF token of the session as a header on every request it makes.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  function box() { return document.getElementById("q"); }
  function hits() { return Array.prototype.slice.call(document.querySelectorAll("#hits .hit")); }
  function selected() { return document.querySelector("#hits .hit.selected"); }
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function select(index) {
    var list = hits();
    if (!list.length) { return; }
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (el, i) {
      el.classList.toggle("selected", i === index);
      el.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    list[index].scrollIntoView({ block: "nearest" });
  }

  function open(hit) {
    var preview = document.getElementById("preview");
    if (!hit) { return; }
    if (!preview || !window.htmx) {
      window.location.href = hit.getAttribute("data-href");
      return;
    }
    window.htmx.ajax("GET", hit.getAttribute("data-href") + "/panel", { target: "#preview", swap: "innerHTML" })
      .then(function () { preview.focus(); });
  }

  // The fix steps of the open article: its first ordered list, else the whole article text.
  function fixSteps() {
    var body = document.getElementById("article-body");
    if (!body) { return ""; }
    var list = body.querySelector("ol");
    var source = list || body;
    if (list) {
      return Array.prototype.map.call(list.children, function (li, i) {
        return (i + 1) + ". " + li.innerText.trim().replace(/\s*\n\s*/g, " ");
      }).join("\n");
    }
    return source.innerText.trim();
  }

  function copyFix() {
    var text = fixSteps();
    var status = document.getElementById("copy-status");
    if (!text) { return; }
    navigator.clipboard.writeText(text).then(function () {
      if (status) { status.textContent = "已复制处理步骤"; }
    }, function () {
      if (status) { status.textContent = "无法写入剪贴板"; }
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var q = box();
    var inBox = q && event.target === q;
    if (event.key === "Escape") {
      // Esc returns to the box; in the box it leaves it, so the one-key actions (c, t, /) work.
      if (!q) { return; }
      event.preventDefault();
      if (inBox) { q.blur(); } else { q.focus(); q.select(); }
      return;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!hits().length || (!inBox && typing(event.target))) { return; }
      event.preventDefault();
      var current = hits().indexOf(selected());
      if (current < 0) { select(0); } else { select(current + (event.key === "ArrowDown" ? 1 : -1)); }
      return;
    }
    if (event.key === "Enter" && (inBox || !typing(event.target))) {
      var hit = selected() || (inBox ? hits()[0] : null);
      if (hit) { event.preventDefault(); open(hit); }
      else if (inBox) { event.preventDefault(); }
      return;
    }
    if (typing(event.target)) { return; }
    if (event.key === "/") {
      if (q) { event.preventDefault(); q.focus(); q.select(); }
    } else if (event.key === "c") {
      event.preventDefault();
      copyFix();
    } else if (event.key === "t") {
      var link = document.getElementById("open-ticket");
      if (link) { event.preventDefault(); window.location.href = link.getAttribute("href"); }
    }
  });

  // After new results arrive: select the first one and keep the address bookmarkable (/?q=...).
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "results") {
      if (hits().length) { select(0); }
      var form = document.getElementById("search-form");
      if (form) {
        var params = new URLSearchParams(new FormData(form));
        Array.from(params.keys()).forEach(function (k) { if (!params.get(k)) { params.delete(k); } });
        var query = params.toString();
        window.history.replaceState(null, "", "/" + (query ? "?" + query : ""));
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var q = box();
    if (q) {
      q.focus();
      q.setSelectionRange(q.value.length, q.value.length);
    }
    if (hits().length) { select(0); }
  });
})();
