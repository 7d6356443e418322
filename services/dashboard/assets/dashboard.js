// The analysts' dashboard: one EventSource per choice of rows, periods and region. The server
// sends a snapshot of the tables, then only the rows that changed (and the keys of rows gone);
// this script keeps each table as rows by key and redraws what changed. Charts are SVG drawn
// here; nothing is loaded from anywhere but this server.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const KEY_COLUMNS = ["period", "code", "group", "victim_gender", "region"];
const FUNNEL = ["reported", "in_case", "referred", "decided", "cleared"];
// The funnel's short stage names (the tables' headers carry the report's full terms).
const STAGES = ["Anmälda", "I ärende", "Redovisade", "Beslutade", "Uppklarade"];
// The Swedish words for the names a publication's changes carry (the names themselves are the
// contract's, as `gryning diff` prints them).
const TABLE_WORDS = {
  "case-flow": "Ärendeflöde",
  "clearance": "Personuppklaring",
  "care": "Kriminalvården",
  "progress": "Kedjan",
  "region-comparison": "Regionerna",
  "social-services": "Socialtjänsten",
};
const BY_WORDS = { code: "brottskod", group: "brottskodsgrupp" };
const PERIOD_WORDS = { quarter: "kvartal", "year-to-date": "året till och med kvartalet" };
const state = { tables: new Map(), source: null, about: null, publicationsAt: 0, publicationsTimer: null };

function el(name, attrs, text) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function shown(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("sv-SE") : v.toLocaleString("sv-SE", { maximumFractionDigits: 1 });
  return String(v);
}

// A row's key: its key columns (a suppression mark is text too, so the columns decide).
function keyWidth(table) {
  let n = 0;
  while (n < table.columns.length && KEY_COLUMNS.includes(table.columns[n])) n++;
  return n;
}

function keyOf(table, row) {
  return row.slice(0, keyWidth(table)).join("|");
}

function sortedRows(table) {
  return [...table.rows.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(e => e[1]);
}

function problem(text) {
  const p = document.getElementById("problem");
  p.textContent = text || "";
  p.hidden = !text;
}

function renderTable(table, changed) {
  const id = "table-" + table.name;
  let section = document.getElementById(id);
  if (!section) {
    section = el("section", { id });
    document.getElementById("tables").append(section);
  }
  section.replaceChildren(el("h2", {}, table.title));
  const t = el("table", { "data-table": table.name });
  const head = el("tr");
  table.labels.forEach((label, j) => head.append(el("th", { scope: "col", title: table.columns[j] }, label)));
  t.append(el("thead"));
  t.firstChild.append(head);
  const body = el("tbody");
  for (const row of sortedRows(table)) {
    const key = keyOf(table, row);
    const tr = el("tr", { "data-row": key });
    row.forEach((v, j) => {
      const td = el(j < keyWidth(table) ? "th" : "td", { "data-table": table.name, "data-row": key, "data-column": table.columns[j] }, shown(v));
      if (typeof v === "number") td.className = "n";
      if (changed && changed.has(key)) td.classList.add("changed");
      tr.append(td);
    });
    body.append(tr);
  }
  t.append(body);
  section.append(t);
}

function column(table, name) {
  return table.columns.indexOf(name);
}

function latestPeriod(table) {
  let latest = null;
  for (const row of table.rows.values()) if (latest === null || row[0] > latest) latest = row[0];
  return latest;
}

// One small funnel per code or group: reported → in a case → referred → decided → cleared,
// bars relative to the crimes reported, for the latest period in the table.
function renderFunnel() {
  const progress = state.tables.get("progress");
  const box = document.getElementById("funnel");
  box.replaceChildren();
  if (!progress) return;
  const period = latestPeriod(progress);
  document.getElementById("funnel-period").textContent = period ? "(" + period + ")" : "";
  const width = keyWidth(progress);
  for (const row of sortedRows(progress)) {
    if (row[0] !== period) continue;
    const label = row.slice(1, width).join(" ");
    const values = FUNNEL.map(c => row[column(progress, c)]);
    const top = typeof values[0] === "number" && values[0] > 0 ? values[0] : 1;
    const figure = svg("svg", { viewBox: "0 0 250 118", width: 250, height: 118, role: "img", "data-funnel": label });
    figure.append(svg("title", {}, "Kedjan för " + label + ", " + period));
    figure.append(svg("desc", {}, FUNNEL.map((c, i) => STAGES[i] + " " + shown(values[i])).join(", ")));
    figure.append(svg("text", { x: 2, y: 13, class: "funnel-title" }, label));
    FUNNEL.forEach((c, i) => {
      const v = values[i];
      const w = typeof v === "number" ? Math.max(1, 130 * v / top) : 0;
      const y = 20 + i * 19;
      figure.append(svg("text", { x: 2, y: y + 12, class: "funnel-label" }, STAGES[i]));
      figure.append(svg("rect", { x: 62, y, width: w, height: 15, class: "bar bar-" + i }));
      figure.append(svg("text", { x: 66 + w, y: y + 12, class: "funnel-value" }, shown(v)));
    });
    box.append(figure);
  }
}

// The open backlog: progress's `open` per code or group and period, and all periods together.
function renderBacklog() {
  const progress = state.tables.get("progress");
  const box = document.getElementById("backlog");
  box.replaceChildren();
  if (!progress) return;
  const open = column(progress, "open");
  const width = keyWidth(progress);
  const periods = [...new Set([...progress.rows.values()].map(r => r[0]))].sort();
  const byKey = new Map();
  for (const row of progress.rows.values()) {
    const k = row.slice(1, width).join(" ");
    if (!byKey.has(k)) byKey.set(k, new Map());
    byKey.get(k).set(row[0], row[open]);
  }
  const t = el("table", { "data-table": "backlog" });
  const head = el("tr");
  head.append(el("th", {}, progress.labels[1] || ""));
  periods.forEach(p => head.append(el("th", {}, p)));
  head.append(el("th", {}, "Alla perioder"));
  t.append(el("thead"));
  t.firstChild.append(head);
  const body = el("tbody");
  const sum = vs => (vs.every(v => typeof v === "number") ? vs.reduce((a, b) => a + b, 0) : "..");
  const rows = [...byKey.keys()].map(k => {
    const vs = periods.map(p => (byKey.get(k).has(p) ? byKey.get(k).get(p) : 0));
    return { k, vs, all: sum(vs) };
  });
  // The largest backlog first; a hidden total (suppression) last.
  rows.sort((a, b) => (typeof b.all === "number" ? b.all : -1) - (typeof a.all === "number" ? a.all : -1) || (a.k < b.k ? -1 : 1));
  const totals = periods.map((_, i) => sum(rows.map(r => r.vs[i])));
  const total = el("tr", { class: "total-row" });
  total.append(el("th", {}, "Totalt"));
  totals.forEach((v, i) => total.append(el("td", { class: "n", "data-table": "backlog", "data-row": "all|" + periods[i], "data-column": "open" }, shown(v))));
  total.append(el("td", { class: "n", "data-table": "backlog", "data-row": "all", "data-column": "all" }, shown(sum(totals))));
  body.append(total);
  for (const { k, vs, all } of rows) {
    const tr = el("tr");
    tr.append(el("th", {}, k));
    vs.forEach((v, i) => tr.append(el("td", { class: "n", "data-table": "backlog", "data-row": k + "|" + periods[i], "data-column": "open" }, shown(v))));
    tr.append(el("td", { class: "n total", "data-table": "backlog", "data-row": k, "data-column": "all" }, shown(all)));
    body.append(tr);
  }
  t.append(body);
  box.append(t);
}

function renderStatus(status) {
  const t = el("table", { "data-table": "status" });
  const head = el("tr");
  ["Projektion", "Position", "Loggens senaste position", "Eftersläpning (händelser)"].forEach(h => head.append(el("th", {}, h)));
  t.append(el("thead"));
  t.firstChild.append(head);
  const body = el("tbody");
  for (const p of status.projections) {
    const tr = el("tr");
    tr.append(el("th", {}, p.name));
    tr.append(el("td", { class: "n" }, shown(p.position)));
    tr.append(el("td", { class: "n" }, shown(status.head)));
    tr.append(el("td", { class: "n" + (p.lag ? " behind" : ""), "data-table": "status", "data-row": p.name, "data-column": "lag" }, shown(p.lag)));
    body.append(tr);
  }
  t.append(body);
  document.getElementById("status").replaceChildren(t);
}

function renderPublications(body) {
  const box = document.getElementById("publications");
  box.replaceChildren();
  if (!body.publications.length) {
    box.append(el("p", { class: "hint" }, "Inget kvartal är publicerat ännu."));
    return;
  }
  for (const p of body.publications) {
    const section = el("section", { "data-publication": p.quarter });
    section.append(el("h3", {}, p.quarter + ", revision " + p.revision + (p.automatic ? " (automatisk)" : "")));
    section.append(el("p", { class: "hint" }, "Publicerad " + p.published_at + ", beräknad vid position " + shown(p.computed_at) + ", brottskodskatalogens version " + p.catalogue_version));
    if (!p.changes.length) {
      section.append(el("p", {}, "De levande siffrorna är desamma."));
    } else {
      const n = p.changes.length;
      section.append(el("p", {}, shown(n) + (n === 1 ? " cell skiljer sig" : " celler skiljer sig") + " från de levande siffrorna."));
      const t = el("table", { "data-table": "diff-" + p.quarter });
      const head = el("tr");
      ["Tabell", "Per", "Period", "Rad", "Mått", "Publicerat", "Levande"].forEach(h => head.append(el("th", {}, h)));
      t.append(el("thead"));
      t.firstChild.append(head);
      const tb = el("tbody");
      for (const c of p.changes.slice(0, 200)) {
        const tr = el("tr");
        [TABLE_WORDS[c.table] || c.table, BY_WORDS[c.by] || c.by, PERIOD_WORDS[c.period] || c.period, c.row.join(" / "), c.measure_label || c.measure]
          .forEach(v => tr.append(el("td", {}, v)));
        tr.append(el("td", { class: "n" }, shown(c.published)));
        tr.append(el("td", { class: "n" }, shown(c.now)));
        tb.append(tr);
      }
      t.append(tb);
      section.append(t);
    }
    box.append(section);
  }
}

async function loadPublications() {
  state.publicationsAt = Date.now();
  try {
    const answer = await fetch("/api/publications", { credentials: "same-origin" });
    if (answer.status === 401) return problem("Sessionen har upphört: logga in igen.");
    if (answer.ok) renderPublications(await answer.json());
    else problem("Publiceringarna kunde inte läsas: servern svarade med status " + answer.status + ". Ladda om sidan om en stund.");
  } catch (e) {
    problem("Publiceringarna kunde inte läsas: " + e);
  }
}

// At most one reading of the publications every five seconds while changes land.
function publicationsSoon() {
  if (state.publicationsTimer) return;
  const wait = Math.max(0, 5000 - (Date.now() - state.publicationsAt));
  state.publicationsTimer = setTimeout(() => {
    state.publicationsTimer = null;
    loadPublications();
  }, wait);
}

function stamp(position) {
  document.getElementById("position").textContent = shown(position);
  document.getElementById("updated").textContent = new Date().toLocaleTimeString("sv-SE");
}

function onSnapshot(data) {
  state.tables.clear();
  document.getElementById("tables").replaceChildren();
  for (const t of data.tables) {
    const table = { name: t.name, title: t.title, columns: t.columns, labels: t.labels, rows: new Map() };
    for (const row of t.rows) table.rows.set(keyOf(table, row), row);
    state.tables.set(t.name, table);
    renderTable(table);
  }
  const about = data.about;
  if (!state.about) {
    state.about = about;
    const region = document.getElementById("region");
    for (const r of about.regions) region.append(el("option", { value: r }, r));
    if (about.suppress_below) {
      region.disabled = true;
      const note = document.getElementById("suppression");
      note.textContent = "Små tal döljs: antal från 1 till " + (about.suppress_below - 1) + " visas som <" + about.suppress_below + ", och antal som skulle avslöja dem visas som ”..”. Det gäller alla regioner tillsammans, så ingen enskild region visas.";
      note.hidden = false;
    }
  }
  renderFunnel();
  renderBacklog();
  renderStatus(data.status);
  stamp(data.position);
  problem("");
  document.body.dataset.position = data.position;
}

function onChange(data) {
  for (const t of data.tables) {
    const table = state.tables.get(t.name);
    if (!table) continue;
    const changed = new Set();
    const width = keyWidth(table);
    for (const key of t.removed) table.rows.delete(key.slice(0, width).join("|"));
    for (const row of t.changed) {
      const key = keyOf(table, row);
      table.rows.set(key, row);
      changed.add(key);
    }
    renderTable(table, changed);
  }
  renderFunnel();
  renderBacklog();
  stamp(data.position);
  document.body.dataset.position = data.position;
  publicationsSoon();
}

function connect() {
  if (state.source) state.source.close();
  const q = new URLSearchParams();
  q.set("by", document.getElementById("by").value);
  q.set("period", document.getElementById("period").value);
  q.set("region", document.getElementById("region").value);
  const source = new EventSource("/api/events?" + q.toString());
  state.source = source;
  source.addEventListener("snapshot", e => onSnapshot(JSON.parse(e.data)));
  source.addEventListener("change", e => onChange(JSON.parse(e.data)));
  source.addEventListener("status", e => renderStatus(JSON.parse(e.data)));
  source.addEventListener("ended", () => {
    source.close();
    problem("Sessionen har upphört: logga in igen.");
  });
  source.addEventListener("open", () => document.getElementById("live").classList.remove("off"));
  source.addEventListener("error", () => {
    document.getElementById("live").classList.add("off");
    if (source.readyState === EventSource.CLOSED) problem("Anslutningen för levande siffror stängdes (sessionen kan ha upphört): ladda om sidan.");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["by", "period", "region"]) document.getElementById(id).addEventListener("change", connect);
  connect();
  loadPublications();
});
