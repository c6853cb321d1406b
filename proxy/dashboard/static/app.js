// ollama-lanes dashboard: reads /stats/stream (Server-Sent Events) and draws it.
// Plain DOM and SVG, no library, no build step. Text goes in with textContent only (client keys
// are whatever clients send), and nothing is styled inline: the page's CSP forbids both.
"use strict";

(function () {
  const TOKEN_KEY = "ollama-lanes.token";
  const RING = 300; // sparkline samples: one a second, the last 5 minutes
  const CLASSES = ["interactive", "normal", "batch"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SERIES = [
    ["prefill", "prefill tokens/s", (doc) => doc.tokens.prefill_tokens_per_s],
    ["decode", "decode tokens/s", (doc) => doc.tokens.decode_tokens_per_s],
    ["output", "output tokens/s (1 min)", (doc) => doc.tokens.output_tokens_per_s_1m],
  ];

  const state = { source: null, retry: null, delay: 1000, stats: null, queue: null, events: 0 };
  const rings = { prefill: [], decode: [], output: [] };
  let lastSample = 0;

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function tr(cells, className) {
    const row = el("tr", className);
    for (const cell of cells) {
      const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
      row.append(text instanceof Node ? wrap(text, cls) : el("td", cls, text));
    }
    return row;
  }

  function wrap(node, cls) {
    const td = el("td", cls);
    td.append(node);
    return td;
  }

  function empty(columns, text) {
    const row = el("tr", "empty");
    const td = el("td", "", text);
    td.colSpan = columns;
    row.append(td);
    return row;
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1000) return `${Math.round(value)} ms`;
    if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
    const minutes = Math.floor(value / 60000);
    return `${minutes} min ${Math.round((value % 60000) / 1000)} s`;
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
  }

  function bytes(value) {
    if (!value) return "–";
    return value >= 1e9 ? `${(value / 1e9).toFixed(1)} GB` : `${Math.round(value / 1e6)} MB`;
  }

  function klass(name) {
    return el("span", `klass ${CLASSES.includes(name) ? name : ""}`, name);
  }

  // ---- the connection: a session value, then the EventSource; reconnects by itself ----

  function setStatus(kind, text) {
    const badge = $("status");
    badge.className = `badge ${kind}`;
    badge.textContent = text;
    $("offline").hidden = kind !== "offline";
    document.body.classList.toggle("offline", kind === "offline");
  }

  async function connect() {
    clearTimeout(state.retry);
    state.retry = null;
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    let answer;
    try {
      const resp = await fetch("/dashboard/session", { method: "POST", headers, cache: "no-store" });
      if (resp.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        askToken(token ? "The proxy refused that token." : "");
        return;
      }
      if (!resp.ok) throw new Error(`session: HTTP ${resp.status}`);
      answer = await resp.json();
    } catch (err) {
      disconnected();
      return;
    }
    listen(answer.session);
  }

  function listen(session) {
    const source = new EventSource(`/stats/stream?session=${encodeURIComponent(session)}`);
    state.source = source;
    source.addEventListener("stats", (event) => onStats(JSON.parse(event.data)));
    source.addEventListener("queue", (event) => {
      state.queue = JSON.parse(event.data);
      renderQueue();
    });
    source.onerror = () => {
      source.close();
      if (state.source === source) {
        state.source = null;
        disconnected();
      }
    };
  }

  function disconnected() {
    setStatus("offline", "disconnected");
    clearTimeout(state.retry);
    state.retry = setTimeout(connect, state.delay);
    state.delay = Math.min(4000, Math.round(state.delay * 1.5));
  }

  function askToken(message) {
    setStatus("connecting", "token needed");
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !message;
    $("login-error").textContent = message || "";
    $("token").focus();
  }

  function onLogin(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    $("login").hidden = true;
    setStatus("connecting", "connecting");
    connect();
  }

  // ---- drawing: each event redraws from the documents ----

  function onStats(doc) {
    state.stats = doc;
    state.delay = 1000;
    state.events += 1;
    document.body.dataset.events = String(state.events); // stats events drawn, for tests
    setStatus("live", "live");
    $("login").hidden = true;
    $("board").hidden = false;
    sample(doc);
    renderSummary(doc);
    renderVerdict(doc);
    renderLanes(doc);
    renderQueue();
    renderThroughput(doc);
    renderLatency(doc);
    renderWarnings(doc);
    renderLoaded(doc);
    renderClients(doc);
  }

  function renderSummary(doc) {
    const up = doc.upstream;
    const ollama = up.reachable ? `Ollama ${up.version || "?"}` : "Ollama NOT REACHABLE";
    const c = doc.counters;
    $("summary").textContent =
      `v${doc.version} · up ${ms(doc.uptime_s * 1000)} · ${ollama} · ` +
      `${c.received} received, ${c.completed} completed, ${c.failed} failed, ` +
      `${c.rejected} rejected, ${c.cancelled_while_queued + c.cancelled_while_running} cancelled`;
  }

  function renderVerdict(doc) {
    const verdict = doc.verdict;
    const line = $("verdict");
    line.hidden = !verdict;
    if (!verdict) return;
    line.dataset.kind = verdict.kind || "";
    $("verdict-kind").textContent = verdict.kind || "";
    $("verdict-explanation").textContent = verdict.explanation || "";
    $("verdict-fix").textContent = verdict.fix ? `Fix: ${verdict.fix}` : "";
  }

  function sameModel(asked, listed) {
    return asked === listed || `${asked}:latest` === listed;
  }

  function laneGroups(name, host, running) {
    const mine = running.filter((row) => row.upstream === name);
    const taken = new Set();
    const free = Math.max(0, host.lanes - host.busy);
    const groups = Object.entries(host.models).map(([model, row]) => {
      const holders = mine.filter((r) => !taken.has(r) && sameModel(r.model, model));
      holders.forEach((r) => taken.add(r));
      const open = Math.max(0, Math.min(row.lanes - holders.length, free));
      const label = `${row.busy}/${row.lanes} busy · lanes from ${row.source}`;
      const ollama = row.ollama_lanes < row.lanes ? ` · Ollama runs ${row.ollama_lanes}` : "";
      return { model, lanes: row.lanes, holders, open, label: label + ollama };
    });
    const rest = mine.filter((r) => !taken.has(r));
    if (groups.length === 0) {
      const source = host.cap !== null ? "lanes set by hand" : `lanes from ${host.num_parallel_source}`;
      const label = `${host.busy}/${host.lanes} busy · ${source}`;
      groups.push({ model: "", lanes: host.lanes, holders: rest, open: free, label });
    } else if (rest.length > 0) {
      groups.push({ model: "(other)", lanes: rest.length, holders: rest, open: 0, label: "" });
    }
    return groups;
  }

  function heldCell(host, model, row) {
    const cell = el("div", "lane-cell held");
    Object.assign(cell.dataset, { host, model, client: row.client, klass: row.priority });
    cell.dataset.lane = String(row.lane);
    cell.append(el("span", "lane-no", `lane ${row.lane}`), el("span", "who", row.client));
    const what = el("span", "what");
    what.append(klass(row.priority), ` · ${row.model}`);
    cell.append(what, el("span", "how", `${ms(row.elapsed_ms)} · ${num(row.tokens)} tokens`));
    return cell;
  }

  function idleCell(host, model, kind, text) {
    const cell = el("div", `lane-cell ${kind}`, text);
    Object.assign(cell.dataset, { host, model });
    return cell;
  }

  function renderLanes(doc) {
    const lanes = doc.lanes;
    $("lanes-total").textContent = `${lanes.busy} of ${lanes.configured} busy`;
    const hosts = [];
    for (const [name, host] of Object.entries(doc.upstreams)) {
      const box = el("div", "host");
      const title = el("div", "host-title");
      const parallel = host.num_parallel === null ? "?" : host.num_parallel;
      title.append(
        el("strong", "", name),
        el("span", "", host.url),
        el("span", "source", `NUM_PARALLEL ${parallel} (${host.num_parallel_source})`),
        el("span", "", host.cap !== null ? `lanes ${host.cap} set by hand` : "lanes auto"),
      );
      if (!host.healthy || !host.reachable) title.append(el("span", "down", "DOWN"));
      box.append(title);
      for (const group of laneGroups(name, host, lanes.running)) {
        const section = el("div", "model");
        const head = el("div", "model-title");
        head.append(el("strong", "", group.model || "lanes"), el("span", "source", group.label));
        const cells = el("div", "cells");
        const held = [...group.holders].sort((a, b) => a.lane - b.lane);
        held.forEach((row) => cells.append(heldCell(name, group.model, row)));
        for (let i = 0; i < group.open; i += 1) cells.append(idleCell(name, group.model, "free", "free"));
        const shared = Math.max(0, group.lanes - held.length - group.open);
        for (let i = 0; i < shared; i += 1) {
          cells.append(idleCell(name, group.model, "shared", "in use by another model"));
        }
        section.append(head, cells);
        box.append(section);
      }
      hosts.push(box);
    }
    $("hosts").replaceChildren(...hosts);
  }

  function renderQueue() {
    const doc = state.stats;
    const queue = state.queue;
    if (!doc) return;
    const q = doc.queue;
    const oldest = q.oldest_wait_ms === null ? "" : ` · oldest waits ${ms(q.oldest_wait_ms)}`;
    $("queue-total").textContent = `${q.depth} waiting of at most ${q.max_queue}${oldest}`;
    const next = (queue && queue.next_in_class) || {};
    $("queue-classes").replaceChildren(
      ...CLASSES.map((name) => {
        const tile = el("div", "class-depth");
        tile.dataset.klass = name;
        tile.append(klass(name), el("span", "count", q.by_class[name] || 0));
        tile.append(el("span", "next", next[name] ? `next: ${next[name]}` : "nobody waiting"));
        return tile;
      }),
    );
    const clients = queue ? queue.clients : [];
    $("queue-clients").replaceChildren(
      ...(clients.length === 0
        ? [empty(4, "nobody is waiting")]
        : clients.map((row) => {
            const line = tr([
              row.client,
              [num(row.waiting), "num count"],
              [ms(row.oldest_wait_ms), "num"],
              row.next_in.length ? `next in ${row.next_in.join(", ")}` : "",
            ]);
            line.className = "queue-client";
            line.dataset.client = row.client;
            return line;
          })),
    );
    const rows = queue ? queue.waiting.slice(0, 8) : [];
    $("queue-next").replaceChildren(
      ...(rows.length === 0
        ? [empty(6, "no request is waiting")]
        : rows.map((row) =>
            tr([
              [row.position, "num"],
              row.client,
              klass(row.klass),
              row.model,
              [ms(row.waited_ms), "num"],
              [`~${ms(row.eta_ms)}`, "num"],
            ]),
          )),
    );
  }

  function sample(doc) {
    const now = Date.now();
    if (now - lastSample < 1000) return;
    lastSample = now;
    for (const [key, , read] of SERIES) {
      const ring = rings[key];
      ring.push(read(doc));
      if (ring.length > RING) ring.shift();
    }
  }

  function sparkline(values) {
    const width = RING - 1;
    const height = 40;
    const known = values.filter((v) => v !== null && v !== undefined);
    const top = Math.max(1, ...known);
    const start = width - (values.length - 1);
    const points = values.map((v, i) => `${start + i},${(height - ((v || 0) / top) * (height - 2)).toFixed(1)}`);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
    chart.append(svg("line", { class: "base", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
    if (points.length > 0) {
      const area = [`${start},${height}`, ...points, `${width},${height}`].join(" ");
      chart.append(svg("polygon", { class: "area", points: area }));
      chart.append(svg("polyline", { class: "line", points: points.join(" ") }));
    }
    return chart;
  }

  function meter(label, ratio) {
    const row = el("div", "meter");
    const bar = svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none" });
    bar.append(svg("rect", { class: "track", x: 0, y: 0, width: 100, height: 10, rx: 2 }));
    bar.append(svg("rect", { class: "fill", x: 0, y: 0, width: Math.min(100, ratio * 100), height: 10, rx: 2 }));
    row.append(el("span", "", label), bar, el("span", "pct", `${(ratio * 100).toFixed(1)} %`));
    return row;
  }

  function renderThroughput(doc) {
    $("sparks").replaceChildren(
      ...SERIES.map(([key, label, read]) => {
        const box = el("div", "spark");
        box.dataset.series = key;
        const text = el("div", "label", label);
        text.prepend(el("span", "value", num(read(doc), 1)));
        box.append(text, sparkline(rings[key]));
        return box;
      }),
    );
    const u = doc.utilization;
    $("utilization").replaceChildren(meter("1 min", u.busy_ratio_1m), meter("5 min", u.busy_ratio_5m));
  }

  function renderLatency(doc) {
    const lat = doc.latency;
    $("latency-window").textContent = `last ${Math.round(lat.window_s / 60)} minutes`;
    const rows = [
      ["queue wait", lat.queue_wait_ms],
      ["time to first token", lat.first_byte_ms],
      ["total", lat.total_ms],
    ];
    $("latency").replaceChildren(
      ...rows.map(([name, p]) =>
        tr([name, [ms(p.p50), "num"], [ms(p.p95), "num"], [ms(p.p99), "num"], [num(p.samples), "num"]]),
      ),
    );
  }

  function renderWarnings(doc) {
    const items = doc.warnings.map((w) => {
      const item = el("li");
      item.dataset.kind = w.kind;
      item.append(el("span", "kind", `${w.kind} ×${w.count}`), " ", el("span", "", w.latest));
      item.append(el("div", "hint", `Hint: ${w.hint}`));
      return item;
    });
    $("warnings").replaceChildren(...(items.length ? items : [el("li", "none", "no warnings")]));
  }

  function renderLoaded(doc) {
    const rows = [];
    for (const [host, row] of Object.entries(doc.upstreams)) {
      for (const model of row.loaded_models) {
        const at = model.expires_at ? Date.parse(model.expires_at) : NaN;
        const left = Number.isNaN(at) ? model.expires_at || "–" : ms(Math.max(0, at - Date.now()));
        rows.push(
          tr([
            model.name,
            host,
            [num(model.context_length), "num"],
            [bytes(model.size_bytes), "num"],
            [left, "num"],
          ]),
        );
      }
    }
    $("loaded").replaceChildren(...(rows.length ? rows : [empty(5, "no model loaded")]));
  }

  function renderClients(doc) {
    const entries = Object.entries(doc.clients).sort((a, b) => b[1].requests - a[1].requests);
    $("clients").replaceChildren(
      ...(entries.length === 0
        ? [empty(6, "no client yet")]
        : entries.map(([name, c]) => {
            const share = c.served_share_5m === null ? "–" : `${(c.served_share_5m * 100).toFixed(1)} %`;
            const line = tr([
              name,
              [num(c.requests), "num"],
              [num(c.prompt_tokens), "num"],
              [num(c.eval_tokens), "num"],
              [ms(c.mean_wait_ms), "num"],
              [share, "num"],
            ]);
            line.dataset.client = name;
            return line;
          })),
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", onLogin);
    connect();
  });
})();
