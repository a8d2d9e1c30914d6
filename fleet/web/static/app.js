// Quarry web UI: keyboard shortcuts, matrix expand, schema browser, live
// hunt results. No inline handlers (the CSP forbids them); all text goes
// into the DOM through textContent.
(function () {
  "use strict";

  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  // Keys: a nav link's data-key goes there; "/" focuses the search; j/k
  // move through a list's rows and Enter opens the selected one.
  var rows = [];
  var sel = -1;
  function select(i) {
    if (!rows.length) return;
    if (sel >= 0 && rows[sel]) rows[sel].classList.remove("sel");
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows[sel].classList.add("sel");
    rows[sel].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector("table.nav-list tbody");
    if (list) rows = Array.prototype.slice.call(list.querySelectorAll("tr"));
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey && e.key === "Enter") {
      var f = document.getElementById("hunt-form");
      if (f) { e.preventDefault(); f.requestSubmit ? f.requestSubmit() : f.submit(); }
      return;
    }
    if (e.key === "Escape" && typing(e)) { e.target.blur(); return; }
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") {
      var s = document.querySelector("[data-focus-key='/']");
      if (s) { e.preventDefault(); s.focus(); s.select(); }
      return;
    }
    if (e.key === "j") { select(sel + 1); return; }
    if (e.key === "k") { select(sel - 1); return; }
    if (e.key === "Enter" && sel >= 0) {
      var a = rows[sel].querySelector("a.rowlink") || rows[sel].querySelector("a");
      if (a) window.location.href = a.href;
      return;
    }
    var link = document.querySelector("[data-key='" + e.key + "']");
    if (link && link.href) { window.location.href = link.href; }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Matrix: expand or collapse every technique's sub-techniques.
    var ex = document.getElementById("expand-all");
    if (ex) {
      ex.addEventListener("click", function () {
        var ds = document.querySelectorAll("#matrix details.tech");
        var open = ex.getAttribute("data-open") !== "1";
        for (var i = 0; i < ds.length; i++) ds[i].open = open;
        ex.setAttribute("data-open", open ? "1" : "0");
        ex.textContent = open ? "Collapse sub-techniques" : "Expand sub-techniques";
      });
    }

    // Hunt: the schema browser inserts names at the cursor; its filter
    // hides tables whose name does not match.
    var sql = document.getElementById("sql");
    var schema = document.getElementById("schema");
    if (sql && schema) {
      schema.addEventListener("click", function (e) {
        var t = e.target.closest("[data-insert]");
        if (!t || t.parentElement.tagName === "SUMMARY") return; // a table name toggles its columns
        e.preventDefault();
        insert(sql, t.getAttribute("data-insert"));
      });
      schema.addEventListener("dblclick", function (e) {
        var t = e.target.closest("[data-insert]");
        if (t) { e.preventDefault(); insert(sql, t.getAttribute("data-insert")); }
      });
      var filter = document.getElementById("schema-filter");
      filter.addEventListener("input", function () {
        var q = filter.value.toLowerCase();
        var ts = schema.querySelectorAll("details.table");
        for (var i = 0; i < ts.length; i++) {
          ts[i].hidden = q !== "" && ts[i].getAttribute("data-name").indexOf(q) < 0;
        }
      });
      // Tab indents in the editor instead of leaving it.
      sql.addEventListener("keydown", function (e) {
        if (e.key === "Tab" && !e.shiftKey) { e.preventDefault(); insert(sql, "  "); }
      });
    }

    // Hunt results: poll until the hunt is done.
    var live = document.getElementById("hunt-live");
    var state = document.getElementById("hunt-state");
    if (live && state && state.getAttribute("data-done") !== "true") poll(live.getAttribute("data-src"), state);
  });

  function insert(ta, text) {
    var s = ta.selectionStart, e = ta.selectionEnd, v = ta.value;
    ta.value = v.slice(0, s) + text + v.slice(e);
    ta.selectionStart = ta.selectionEnd = s + text.length;
    ta.focus();
  }

  function cell(tag, text, cls) {
    var c = document.createElement(tag);
    c.textContent = text == null ? "" : String(text);
    if (cls) c.className = cls;
    return c;
  }

  function ts(s) {
    if (!s || s.indexOf("0001-") === 0) return "—";
    return s.replace("T", " ").replace(/\.\d+/, "").replace("Z", "");
  }

  function render(d, state) {
    var hb = document.querySelector("#hunt-hosts-table tbody");
    hb.textContent = "";
    (d.hosts || []).forEach(function (h) {
      var tr = document.createElement("tr");
      tr.appendChild(cell("td", h.host_identifier));
      var st = document.createElement("td");
      st.appendChild(cell("span", h.status, "st st-" + h.status));
      tr.appendChild(st);
      tr.appendChild(cell("td", h.rows, "n"));
      tr.appendChild(cell("td", ts(h.sent_at), "mono"));
      tr.appendChild(cell("td", ts(h.answered_at), "mono"));
      tr.appendChild(cell("td", h.message || "", "ellip"));
      hb.appendChild(tr);
    });
    if (d.hosts_more) {
      var more = document.createElement("tr");
      var td = cell("td", "… " + d.hosts_more + " more hosts (see the counts above; exports have every row)", "muted");
      td.colSpan = 6;
      more.appendChild(td);
      hb.appendChild(more);
    }
    var counts = [];
    Object.keys(d.counts || {}).sort().forEach(function (k) { counts.push(k + " " + d.counts[k]); });
    counts.push("rows " + d.rows_total);
    document.getElementById("hunt-counts").textContent = counts.join(" · ");
    var head = document.querySelector("#hunt-results thead tr");
    head.textContent = "";
    head.appendChild(cell("th", "host"));
    d.columns.forEach(function (c) { head.appendChild(cell("th", c)); });
    var rb = document.querySelector("#hunt-results tbody");
    rb.textContent = "";
    d.table.forEach(function (r, i) {
      var tr = document.createElement("tr");
      tr.appendChild(cell("td", d.hostcol[i]));
      r.forEach(function (v) { tr.appendChild(cell("td", v, "mono")); });
      rb.appendChild(tr);
    });
    document.getElementById("hunt-shown").textContent = d.shown + " of " + d.rows_total + " shown";
    state.textContent = d.done ? "done" : "running";
    state.className = "tag " + (d.done ? "done" : "live");
    state.setAttribute("data-done", d.done ? "true" : "false");
  }

  function poll(src, state) {
    fetch(src, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        render(d, state);
        if (!d.done) setTimeout(function () { poll(src, state); }, 1000);
      })
      .catch(function () { setTimeout(function () { poll(src, state); }, 3000); });
  }
})();
