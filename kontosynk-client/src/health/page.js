(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var W = JSON.parse(document.getElementById("words").textContent);
  var C = JSON.parse(document.getElementById("config").textContent);
  var ORG = D.o, TAG = D.t, R = D.r, PAGE = 100;
  var STATES = ["unhealthy", "refused_client", "warning", "pending", "healthy"];
  var MARK = ["✘ ", "⚠ ", "⚠ ", "… ", "✔ "];
  var lang = document.documentElement.lang === "en" ? "en" : "sv";
  var coll = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var st = { q: "", state: "", tag: "", sort: "", dir: "asc", page: 0 };
  var open = {};
  R.forEach(function (r) {
    for (var k = r.length; k < 14; k++) r.push(k === 4 ? [] : k === 10 || k === 11 ? "" : k >= 12 ? 0 : null);
  });
  var hay = R.map(function (r) {
    var o = ORG[r[1]];
    return [o[0], o[1], r[2], r[3], r[4].map(function (i) { return TAG[i]; }).join(" "), r[5] || ""]
      .join("\n").toLowerCase();
  });
  var $ = function (id) { return document.getElementById(id); };
  function w(key) { return (W[lang] && W[lang][key]) || key; }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(v) { return v === null || v === undefined ? null : v; }
  var KEY = {
    state: function (r) { return r[0]; },
    org: function (r) { return ORG[r[1]][0] || ORG[r[1]][1]; },
    entity: function (r) { return r[2]; },
    host: function (r) { return r[3]; },
    tags: function (r) { return r[4].map(function (i) { return TAG[i]; }).join(" "); },
    pin: function (r) { return r[5] || ""; },
    expires: function (r) { return num(r[6]); },
    http: function (r) { return r[7] === null ? null : r[7] * 1e6 + (r[8] || 0); },
    since: function (r) { return num(r[9]); },
    uptime: function (r) { return r[13] ? r[12] / r[13] : null; },
    problem: function (r) { return r[11]; }
  };
  function cmp(a, b) {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return coll.compare(String(a), String(b));
  }
  function byDefault(a, b) {
    return a[0] - b[0] || coll.compare(KEY.org(a), KEY.org(b)) || coll.compare(a[2], b[2]) || coll.compare(a[3], b[3]);
  }
  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    st.q = p.get("q") || "";
    st.state = STATES.indexOf(p.get("state")) >= 0 ? p.get("state") : "";
    st.tag = p.get("tag") || "";
    st.sort = KEY[p.get("sort")] ? p.get("sort") : "";
    st.dir = p.get("dir") === "desc" ? "desc" : "asc";
    st.page = Math.max(0, (parseInt(p.get("page"), 10) || 1) - 1);
    var l = p.get("lang");
    if (l === "sv" || l === "en") lang = l;
  }
  function writeHash() {
    var p = new URLSearchParams();
    if (st.q) p.set("q", st.q);
    if (st.state) p.set("state", st.state);
    if (st.tag) p.set("tag", st.tag);
    if (st.sort) { p.set("sort", st.sort); p.set("dir", st.dir); }
    if (st.page) p.set("page", st.page + 1);
    p.set("lang", lang);
    history.replaceState(null, "", "#" + p.toString());
  }
  function since(t) {
    if (t === null || t === undefined) return "–";
    var s = Math.max(0, C.now - t);
    if (s < 3600) return Math.floor(s / 60) + " " + w("m");
    if (s < 172800) return Math.floor(s / 3600) + " " + w("h");
    return Math.floor(s / 86400) + " " + w("d");
  }
  function bar(r) {
    if (!r[10]) return "–";
    var h = '<span class="bar" title="' + r[12] + "/" + r[13] + '">';
    for (var i = 0; i < r[10].length; i++) {
      var c = r[10][i];
      h += "<i" + (c === "-" ? ' class="f"' : c === "~" ? ' class="w"' : "") + "></i>";
    }
    return h + "</span>";
  }
  function row(r, i) {
    var o = ORG[r[1]];
    var pin = r[5] || "";
    var pinCell = !pin ? "–" : pin[0] === "!"
      ? '<b class="warn">' + esc(w("mismatch")) + '</b><br><code title="' + esc(pin.slice(1)) + '">' + esc(pin.slice(1, 9)) + "…</code>"
      : '<code title="' + esc(pin) + '">' + esc(pin.slice(0, 8)) + "…</code>";
    var days = r[6] === null ? "–" : (r[6] < C.warn_days ? '<span class="warn">' + r[6] + "</span>" : r[6]);
    return '<tr class="s' + r[0] + '" data-entity="' + esc(r[2]) + '" data-state="' + STATES[r[0]] + '">' +
      '<td class="state">' + MARK[r[0]] + esc(w("s_" + STATES[r[0]])) + "</td>" +
      "<td>" + esc(o[0]) + (o[1] ? "<br><small>" + esc(o[1]) + "</small>" : "") + "</td>" +
      "<td>" + esc(r[2]) + "</td><td><code>" + esc(r[3]) + "</code></td>" +
      "<td>" + esc(r[4].map(function (t) { return TAG[t]; }).join(", ")) + "</td>" +
      "<td>" + pinCell + "</td><td>" + days + "</td>" +
      "<td>" + (r[7] === null ? "–" : r[7]) + (r[8] === null ? "" : "<br><small>" + r[8] + "&nbsp;ms</small>") + "</td>" +
      "<td>" + since(r[9]) + "</td><td>" + bar(r) + "</td>" +
      '<td class="problem">' + esc(r[11]) + "</td>" +
      (C.check ? '<td><button type="button" data-check="' + i + '">' + esc(w("check_now")) + "</button></td>" : "") +
      "</tr>";
  }
  function groupRow(org, rows) {
    var o = ORG[org];
    var isOpen = !!open[org];
    return '<tr class="group" data-org="' + org + '"><td class="state">✔ ' + esc(w("s_healthy")) + "</td>" +
      '<td colspan="10">' + esc(o[0]) + (o[1] ? " <small>" + esc(o[1]) + "</small>" : "") + " · " +
      esc(w("group").replace("{n}", rows.length)) + " (" + esc(w(isOpen ? "hide" : "show")) + ")</td>" +
      (C.check ? '<td><button type="button" data-check-org="' + org + '">' + esc(w("check_now")) + "</button></td>" : "") +
      "</tr>";
  }
  function items() {
    var q = st.q.toLowerCase().trim();
    var terms = q ? q.split(/\s+/) : [];
    var tag = TAG.indexOf(st.tag);
    var want = STATES.indexOf(st.state);
    var idx = [];
    for (var i = 0; i < R.length; i++) {
      var r = R[i];
      if (want >= 0 && r[0] !== want) continue;
      if (st.tag && r[4].indexOf(tag) < 0) continue;
      var ok = true;
      for (var k = 0; k < terms.length; k++) if (hay[i].indexOf(terms[k]) < 0) { ok = false; break; }
      if (ok) idx.push(i);
    }
    if (st.sort) {
      var key = KEY[st.sort], sign = st.dir === "desc" ? -1 : 1;
      idx.sort(function (a, b) { return sign * cmp(key(R[a]), key(R[b])) || byDefault(R[a], R[b]); });
    } else {
      idx.sort(function (a, b) { return byDefault(R[a], R[b]); });
    }
    var collapse = !st.sort && !q && !st.state;
    if (!collapse) return { list: idx.map(function (i) { return { i: i }; }), count: idx.length };
    var list = [], groups = {}, order = [];
    idx.forEach(function (i) {
      if (R[i][0] !== 4) { list.push({ i: i }); return; }
      var org = R[i][1];
      if (!groups[org]) { groups[org] = []; order.push(org); }
      groups[org].push(i);
    });
    order.forEach(function (org) {
      list.push({ g: org, rows: groups[org] });
      if (open[org]) groups[org].forEach(function (i) { list.push({ i: i }); });
    });
    return { list: list, count: idx.length };
  }
  function render() {
    var it = items();
    var pages = Math.max(1, Math.ceil(it.list.length / PAGE));
    if (st.page >= pages) st.page = pages - 1;
    var slice = it.list.slice(st.page * PAGE, (st.page + 1) * PAGE);
    var html = slice.map(function (x) { return x.g !== undefined ? groupRow(x.g, x.rows) : row(R[x.i], x.i); }).join("");
    $("rows").innerHTML = html || '<tr><td colspan="12" class="small">' + esc(w("no_rows")) + "</td></tr>";
    $("shown").textContent = w("rows").replace("{n}", it.count);
    $("shown").setAttribute("data-n", it.count);
    $("pager").innerHTML = pages > 1
      ? '<button type="button" data-page="-1"' + (st.page ? "" : " disabled") + ">" + esc(w("prev")) + "</button>" +
        "<span>" + (st.page + 1) + " / " + pages + "</span>" +
        '<button type="button" data-page="1"' + (st.page + 1 < pages ? "" : " disabled") + ">" + esc(w("next")) + "</button>"
      : "";
    var ths = document.querySelectorAll("th[data-sort]");
    for (var i = 0; i < ths.length; i++) {
      ths[i].className = ths[i].getAttribute("data-sort") === st.sort ? st.dir : "";
    }
    $("q").value = st.q;
    $("f-state").value = st.state;
    $("f-tag").value = st.tag;
    writeHash();
  }
  function words() {
    document.documentElement.lang = lang;
    var els = document.querySelectorAll("[data-t]");
    for (var i = 0; i < els.length; i++) {
      var d = els[i].getAttribute("data-d");
      var text = w(els[i].getAttribute("data-t"));
      els[i].textContent = d ? text.replace("{d}", d) : text;
    }
    var ph = document.querySelectorAll("[data-tp]");
    for (var j = 0; j < ph.length; j++) ph[j].placeholder = w(ph[j].getAttribute("data-tp"));
  }
  TAG.forEach(function (t) {
    var o = document.createElement("option");
    o.value = t; o.textContent = t;
    $("f-tag").appendChild(o);
  });
  function post(params, button) {
    button.disabled = true;
    button.textContent = w("checking");
    fetch("api/check", { method: "POST", body: new URLSearchParams(params) })
      .then(function () { location.reload(); }, function () { location.reload(); });
  }
  var timer;
  $("q").addEventListener("input", function () {
    clearTimeout(timer);
    var v = this.value;
    timer = setTimeout(function () { st.q = v; st.page = 0; render(); }, 150);
  });
  $("f-state").addEventListener("change", function () { st.state = this.value; st.page = 0; render(); });
  $("f-tag").addEventListener("change", function () { st.tag = this.value; st.page = 0; render(); });
  $("lang-switch").addEventListener("click", function () { lang = lang === "sv" ? "en" : "sv"; words(); render(); });
  document.querySelector("thead").addEventListener("click", function (e) {
    var th = e.target.closest("th[data-sort]");
    if (!th) return;
    var key = th.getAttribute("data-sort");
    if (st.sort === key) st.dir = st.dir === "asc" ? "desc" : "asc"; else { st.sort = key; st.dir = "asc"; }
    st.page = 0;
    render();
  });
  $("rows").addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (b && b.hasAttribute("data-check")) {
      var r = R[+b.getAttribute("data-check")];
      post({ entity_id: r[2], base_uri: r[3] }, b);
      return;
    }
    if (b && b.hasAttribute("data-check-org")) {
      post({ organization_id: ORG[+b.getAttribute("data-check-org")][1] }, b);
      return;
    }
    var g = e.target.closest("tr.group");
    if (g) { var org = g.getAttribute("data-org"); open[org] = !open[org]; render(); }
  });
  $("pager").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-page]");
    if (b) { st.page += +b.getAttribute("data-page"); render(); }
  });
  window.addEventListener("hashchange", function () { readHash(); words(); render(); });
  readHash();
  words();
  render();
  if (C.refresh) {
    setInterval(function () {
      var a = document.activeElement;
      if (!a || a.id !== "q") location.reload();
    }, C.refresh * 1000);
  }
  document.body.setAttribute("data-render-ms", Math.round(performance.now()));
  document.body.setAttribute("data-overflow",
    document.documentElement.scrollWidth > window.innerWidth ||
      $("servers").getBoundingClientRect().right > window.innerWidth ? "yes" : "no");
})();
