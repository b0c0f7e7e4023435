// live_page: the page served at `/`, one self-contained document (no external assets).

#include "endpoints.hpp"

namespace backplane::detail {

std::string live_page(std::string_view initial_json) {
  // The page's initial state comes inline: {"tree": <the /tree document>, "reports": [<the
  // kept reports, oldest first>]}. Rows are keyed by the child's path (data-path) and carry its
  // state as attributes, so that a test (or a script) reads them from the DOM without parsing text.
  static std::string const page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>backplane: supervision tree</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; padding: .25em .8em; border-bottom: 1px solid #ddd; }
tr[data-status="running"] td.status { color: #17702b; }
tr[data-status="restarting"] td.status { color: #b36b00; font-weight: bold; }
tr[data-status="stopped"] td.status { color: #a01818; font-weight: bold; }
tr.changed { background: #fff4c2; }
#reports li { font-family: ui-monospace, monospace; font-size: 12px; margin: .2em 0; }
#conn[data-state="live"] { color: #17702b; }
#conn[data-state="down"] { color: #a01818; }
</style>
</head>
<body>
<h1>Supervision tree <span id="root"></span></h1>
<p>Events: <span id="conn" data-state="connecting">connecting</span>.
Root budget: <span id="budget">?</span>.</p>
<table id="tree">
<thead><tr><th>path</th><th>kind</th><th>restart</th><th>status</th><th>incarnation</th>
<th>restarts</th><th>crashes</th><th>last reason</th></tr></thead>
<tbody></tbody>
</table>
<h2>Last reports</h2>
<ol id="reports" reversed></ol>
<script type="application/json" id="initial">@INITIAL@</script>
<script>
"use strict";
const body = document.querySelector("#tree tbody");
const previous = new Map();

function rows(children, depth, out) {
  for (const c of children) {
    out.push([c, depth]);
    rows(c.children || [], depth + 1, out);
  }
  return out;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function render(tree) {
  document.getElementById("root").textContent = tree.path;
  const b = tree.budget;
  document.getElementById("budget").textContent = b
    ? b.restarts_in_window + " of " + b.max_restarts + " restarts in " + b.period_ms + " ms"
    : "no answer";
  body.replaceChildren();
  for (const [c, depth] of rows(tree.children, 0, [])) {
    const tr = document.createElement("tr");
    tr.dataset.path = c.path;
    tr.dataset.status = c.status;
    tr.dataset.incarnation = c.incarnation;
    tr.dataset.restarts = c.restarts;
    tr.dataset.crashes = c.crashes;
    const key = c.status + "/" + c.incarnation;
    if (previous.has(c.path) && previous.get(c.path) !== key) tr.className = "changed";
    previous.set(c.path, key);
    cell(tr, "\u00a0\u00a0".repeat(depth) + c.id);
    cell(tr, c.kind);
    cell(tr, c.restart || "");
    cell(tr, c.status, "status");
    cell(tr, c.incarnation);
    cell(tr, c.restarts);
    cell(tr, c.crashes);
    cell(tr, c.last_reason);
    body.appendChild(tr);
  }
  document.body.dataset.loaded = "true";
}

let pending = false;
async function refresh() {
  if (pending) return;
  pending = true;
  try {
    const r = await fetch("/tree", { cache: "no-store" });
    render(await r.json());
  } catch (e) {
    document.getElementById("budget").textContent = "unreachable";
  } finally {
    pending = false;
  }
}

function report(text) {
  const list = document.getElementById("reports");
  let e;
  try { e = JSON.parse(text); } catch (x) { return; }
  const li = document.createElement("li");
  li.dataset.event = e.event;
  li.dataset.child = e.supervisor + "/" + e.child;
  const why = [e.kind, e.exception_type, e.message].filter((x) => x).join(": ");
  li.textContent = e.event + " " + e.supervisor + "/" + (e.child || "") +
    " #" + e.incarnation + " " + why + " -> " + e.action;
  list.prepend(li);
  while (list.children.length > 20) list.lastChild.remove();
}

const events = new EventSource("/events");
const conn = document.getElementById("conn");
events.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
events.onerror = () => { conn.dataset.state = "down"; conn.textContent = "reconnecting"; };
events.addEventListener("report", (m) => {
  // The stream starts with the kept reports: those up to `seq` came inline.
  if (Number(m.lastEventId) <= initial.seq) return;
  report(m.data);
  refresh();
});
// The state at the time the page was served, so that it shows the tree before any request.
const initial = JSON.parse(document.getElementById("initial").textContent);
render(initial.tree);
for (const r of initial.reports) report(JSON.stringify(r));
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
)html";
  // "</" cannot appear inside a script element; "<\/" is the same JSON string.
  std::string data;
  data.reserve(initial_json.size());
  for (std::size_t i = 0; i < initial_json.size(); ++i) {
    data.push_back(initial_json[i]);
    if (initial_json[i] == '<' && i + 1 < initial_json.size() && initial_json[i + 1] == '/') {
      data.push_back('\\');
    }
  }
  auto out = page;
  out.replace(out.find("@INITIAL@"), 9, data);
  return out;
}

}  // namespace backplane::detail
