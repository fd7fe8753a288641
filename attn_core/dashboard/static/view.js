// The attention view: draws attention records (attn_core/attention_record.py) in the browser.
//
// One module for both hosts: TensorBoard's Attention tab (index.js passes `fetchSource()`,
// which reads the plugin's routes) and the self-contained page of `write_html` (which inlines
// this file and calls `renderStatic`). It has no imports and no build step.
//
// Views: "matrix" (query x key heatmap, or the bipartite "lines" view), "bars", "grid" and
// "image"; a layer and head selector (with "mean of heads") for all. Matrices are drawn on a
// canvas from an ImageData of one pixel per weight, scaled up without smoothing, so switching
// heads touches T*S pixels and no DOM node per weight.
//
// What a test or a script can read: the root's `data-state` ("loading", "ready", "error") and
// `data-render-ms` (the last redraw's time); `.attn-readout` carries `data-query-index`,
// `data-layer`, `data-head` and `data-values` (JSON, the selected query's weights over the keys
// as drawn); key labels and bars carry `data-value`.

const MATRIX_MAX_PX = 768; // the longer side of a matrix, at most
const CELL_MIN_PX = 4;
const CELL_MAX_PX = 28;
const IMAGE_PX = 384; // the longer side of an image view
const GRID_PX = 320;
const LINE_ROW_PX = 18;
const TOP_KEYS = 8; // keys named in the readout's text

// Viridis, sampled at 9 points and interpolated into a 256-entry lookup table.
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
const LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (VIRIDIS.length - 1);
    const j = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - j;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = VIRIDIS[j][c] * (1 - f) + VIRIDIS[j + 1][c] * f;
  }
  return lut;
})();

/** The record's weights, [L, H, T, S] in C order, as a Float32Array. */
export function decodeWeights(record) {
  const text = atob(record.weights);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  // The encoding is little-endian; so is every platform a browser runs on.
  return new Float32Array(bytes.buffer);
}

/** The [T, S] matrix of one layer: one head (a view, no copy) or the mean of the heads. */
export function headMatrix(weights, shape, layer, head) {
  const [, H, T, S] = shape;
  const size = T * S;
  if (head !== "mean") {
    const start = (layer * H + Number(head)) * size;
    return weights.subarray(start, start + size);
  }
  const mean = new Float64Array(size);
  for (let h = 0; h < H; h++) {
    const start = (layer * H + h) * size;
    for (let i = 0; i < size; i++) mean[i] += weights[start + i];
  }
  for (let i = 0; i < size; i++) mean[i] /= H;
  return mean;
}

function finiteMax(values) {
  let max = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max > 0 ? max : 1;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function labelled(text, control) {
  const label = el("label", "attn-field");
  label.append(el("span", "attn-field-name", text), control);
  return label;
}

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, text]) => new Option(text, v)));
  if (options.some(([v]) => v === value)) select.value = value;
  return select.value;
}

function format(value) {
  return Number.isFinite(value) ? value.toFixed(3) : "–";
}

/** Paints `values` (n values of a rows x cols map) into a rows x cols canvas. */
function paintMap(canvas, values, rows, cols, max, alpha = 255, offset = 0) {
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(cols, rows);
  const px = image.data;
  for (let i = 0; i < rows * cols; i++) {
    const v = values[offset + i];
    if (!Number.isFinite(v)) continue; // transparent
    const k = 3 * Math.max(0, Math.min(255, Math.round((v / max) * 255)));
    px[4 * i] = LUT[k];
    px[4 * i + 1] = LUT[k + 1];
    px[4 * i + 2] = LUT[k + 2];
    px[4 * i + 3] = typeof alpha === "function" ? alpha(v / max) : alpha;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function blit(target, source, width, height) {
  target.width = width;
  target.height = height;
  const ctx = target.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, width, height);
  return ctx;
}

/** A source reading the TensorBoard plugin's routes (relative to the document's base URL). */
export function fetchSource() {
  async function get(route, params = {}) {
    const url = new URL(route, document.baseURI);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
    const response = await fetch(url);
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      throw new Error((body && body.error) || `${route}: HTTP ${response.status}`);
    }
    return body;
  }
  return {
    tags: () => get("tags"),
    steps: (run, tag) => get("steps", { run, tag }),
    record: (run, tag, step) => get("record", { run, tag, step }),
  };
}

/** A source over records held in the page (write_html): one run, the records' names as tags. */
export function staticSource(records) {
  const byName = new Map();
  for (const record of records) {
    if (!byName.has(record.name)) byName.set(record.name, []);
    byName.get(record.name).push(record);
  }
  const tags = {};
  for (const name of byName.keys()) tags[name] = { display_name: name };
  return {
    tags: async () => ({ "": tags }),
    steps: async (run, tag) => byName.get(tag).map((_, i) => ({ step: i, wall_time: null })),
    record: async (run, tag, step) => byName.get(tag)[Number(step)],
  };
}

/** Draws the records held in the page: what `write_html`'s page calls. */
export function renderStatic(root, records) {
  return renderApp(root, staticSource(records), parseHash(location.hash));
}

/**
 * The selection a URL's fragment asks for, e.g. `#tag=attention/dev_0&head=2&query=5`: keys
 * run, tag, step, layer, head ("mean" or a number), query, mode ("matrix" or "lines").
 */
export function parseHash(hash) {
  const params = new URLSearchParams(String(hash || "").replace(/^#/, ""));
  const initial = {};
  for (const key of ["run", "tag", "step", "layer", "head", "query", "mode"]) {
    if (params.has(key)) initial[key] = params.get(key);
  }
  return initial;
}

/**
 * Draws the whole view into `root`: pickers, the record's view and the readout.
 *
 * @param {HTMLElement} root The element to draw into (emptied first).
 * @param {{tags: Function, steps: Function, record: Function}} source Where records come from:
 *     `fetchSource()` or `staticSource(records)`.
 * @param {Object} initial The selection to open with (`parseHash`); what does not exist in
 *     the data is ignored.
 * @return {Promise<void>} Resolved when the first record is drawn (or an error is shown).
 */
export async function renderApp(root, source, initial = {}) {
  const state = {
    tags: {}, run: initial.run ?? null, tag: initial.tag ?? null, step: initial.step ?? null,
    record: null, weights: null, layer: 0, head: "mean",
    mode: initial.mode === "lines" ? "lines" : "matrix", query: null, hover: null,
    hoverKey: null, matrix: null, max: 1, cache: new Map(), initial,
  };
  root.classList.add("attn-app");
  root.dataset.state = "loading";

  const runSelect = el("select", "attn-run");
  const tagSelect = el("select", "attn-tag");
  const stepSelect = el("select", "attn-step");
  const reload = el("button", "attn-reload", "Reload");
  const pickers = el("div", "attn-controls attn-pickers");
  const runField = labelled("Run", runSelect);
  const stepField = labelled("Step", stepSelect);
  pickers.append(runField, labelled("Tag", tagSelect), stepField, reload);

  const layerSelect = el("select", "attn-layer");
  const headSelect = el("select", "attn-head");
  const modeButtons = ["matrix", "lines"].map((mode) => {
    const button = el("button", "attn-mode-button", mode);
    button.dataset.mode = mode;
    button.addEventListener("click", () => {
      state.mode = mode;
      drawRecord();
    });
    return button;
  });
  const modeField = el("span", "attn-modes");
  modeField.append(...modeButtons);
  const viewControls = el("div", "attn-controls attn-view-controls");
  const layerField = labelled("Layer", layerSelect);
  const headField = labelled("Head", headSelect);
  viewControls.append(layerField, headField, modeField);

  const info = el("div", "attn-info");
  const stage = el("div", "attn-stage");
  const readout = el("div", "attn-readout");
  const message = el("div", "attn-message");
  root.replaceChildren(pickers, viewControls, info, stage, readout, message);

  // Set by drawRecord: redraws the weights of the current layer/head, and the query highlight.
  let drawWeights = () => {};
  let drawQuery = () => {};

  function fail(error) {
    root.dataset.state = "error";
    message.textContent = String(error.message || error);
    message.classList.add("attn-error");
  }

  function timed(draw) {
    const start = performance.now();
    draw();
    root.dataset.renderMs = (performance.now() - start).toFixed(2);
  }

  async function loadTags() {
    state.tags = await source.tags();
    const runs = Object.keys(state.tags);
    runField.hidden = runs.length === 1 && runs[0] === "";
    if (!runs.length) {
      throw new Error("No attention records in this log directory yet: log some with " +
        "attn_core.summaries.attention(...).");
    }
    state.run = fillSelect(runSelect, runs.map((r) => [r, r || "(root)"]), state.run);
    await loadRun();
  }

  async function loadRun() {
    const tags = Object.entries(state.tags[state.run] || {});
    state.tag = fillSelect(tagSelect, tags.map(([t, i]) => [t, i.display_name || t]), state.tag);
    await loadTag();
  }

  async function loadTag() {
    const steps = await source.steps(state.run, state.tag);
    if (!steps.length) throw new Error(`No steps logged for ${state.tag}`);
    stepField.hidden = steps.length <= 1 && steps.every((s) => s.wall_time === null);
    const wanted = state.step === null ? null : String(state.step);
    const options = steps.map((s) => [String(s.step), String(s.step)]);
    // A new tag opens at its latest step, like TensorBoard's image dashboard.
    const value = fillSelect(stepSelect, options, wanted);
    state.step = options.some(([v]) => v === wanted) ? value : options[options.length - 1][0];
    stepSelect.value = state.step;
    await loadRecord();
  }

  async function loadRecord() {
    root.dataset.state = "loading";
    const key = JSON.stringify([state.run, state.tag, state.step]);
    if (!state.cache.has(key)) state.cache.set(key, await source.record(state.run, state.tag,
      state.step));
    const record = state.cache.get(key);
    const same = state.record && state.record.view === record.view &&
      JSON.stringify(state.record.shape) === JSON.stringify(record.shape);
    state.record = record;
    state.weights = decodeWeights(record);
    const [L, H] = record.shape;
    if (!same) {
      state.layer = Math.min(state.layer, L - 1);
      state.query = defaultQuery(record);
      state.hover = null;
    }
    if (state.initial) {
      // The first record drawn opens at the requested layer, head and query, if they exist.
      const [, , T] = record.shape;
      const { layer, head, query } = state.initial;
      if (layer !== undefined && Number(layer) >= 0 && Number(layer) < L) {
        state.layer = Number(layer);
      }
      if (head === "mean" || (head !== undefined && Number(head) >= 0 && Number(head) < H)) {
        state.head = head === "mean" ? "mean" : String(Number(head));
      }
      if (query !== undefined && Number(query) >= 0 && Number(query) < T) {
        state.query = Number(query);
      }
      state.initial = null;
    }
    fillSelect(layerSelect, record.layer_names.map((name, i) => [String(i), name]),
      String(state.layer));
    const heads = [["mean", "mean of heads"]];
    for (let h = 0; h < H; h++) heads.push([String(h), `head ${h}`]);
    state.head = fillSelect(headSelect, heads, state.head);
    layerField.hidden = L === 1;
    headField.hidden = H === 1;
    modeField.hidden = record.view !== "matrix";
    info.textContent = `${record.name} · ${record.view} · ${record.shape.join(" × ")} ` +
      "(layers × heads × queries × keys)";
    drawRecord();
    message.textContent = "";
    message.classList.remove("attn-error");
    root.dataset.record = JSON.stringify([state.run, state.tag, Number(state.step)]);
    root.dataset.state = "ready";
  }

  function defaultQuery(record) {
    if (record.view === "matrix") return null;
    if (record.view === "image") {
      const [gh, gw] = record.key_grid;
      return Math.floor(gh / 2) * gw + Math.floor(gw / 2);
    }
    return 0;
  }

  function currentQuery() {
    return state.hover !== null ? state.hover : state.query;
  }

  function setHover(t) {
    if (state.hover === t) return;
    state.hover = t;
    drawQuery();
  }

  function pick(t) {
    state.query = t;
    state.hover = null;
    drawQuery();
  }

  function queryRow(t) {
    const S = state.record.shape[3];
    return state.matrix.subarray(t * S, (t + 1) * S);
  }

  function updateReadout() {
    const record = state.record;
    const t = currentQuery();
    readout.dataset.layer = String(state.layer);
    readout.dataset.head = state.head;
    if (t === null) {
      readout.dataset.queryIndex = "";
      readout.dataset.values = "[]";
      readout.textContent = record.view === "matrix"
        ? "Hover a query (row) to see its weights over the keys; click to keep it."
        : "";
      return null;
    }
    const row = queryRow(t);
    const values = Array.from(row);
    readout.dataset.queryIndex = String(t);
    readout.dataset.values = JSON.stringify(values);
    const order = values.map((v, s) => s).filter((s) => Number.isFinite(values[s]))
      .sort((a, b) => values[b] - values[a]).slice(0, TOP_KEYS);
    const head = state.head === "mean" ? "mean of heads" : `head ${state.head}`;
    const title = el("div", "attn-readout-title");
    title.textContent = `query ${t} “${record.query_labels[t]}” · ` +
      `${record.layer_names[state.layer]} · ${head} · top keys:`;
    const list = el("div", "attn-readout-keys");
    for (const s of order) {
      const item = el("span", "attn-readout-key", `${record.key_labels[s]} ${format(values[s])}`);
      item.dataset.keyIndex = String(s);
      list.append(item);
    }
    readout.replaceChildren(title, list);
    if (state.hoverKey !== null && state.hoverKey < values.length) {
      const s = state.hoverKey;
      readout.append(el("div", "attn-readout-cell",
        `“${record.query_labels[t]}” → “${record.key_labels[s]}”: ${format(values[s])}`));
    }
    return values;
  }

  function queryLabels(className, onEnter) {
    const labels = state.record.query_labels.map((text, t) => {
      const label = el("div", `attn-query-label ${className}`, text);
      label.dataset.index = String(t);
      label.title = text;
      label.addEventListener("mouseenter", () => onEnter(t));
      label.addEventListener("click", () => pick(t));
      return label;
    });
    return labels;
  }

  function keyLabels(className) {
    return state.record.key_labels.map((text, s) => {
      const label = el("div", `attn-key-label ${className}`, text);
      label.dataset.index = String(s);
      label.title = text;
      return label;
    });
  }

  function markLabels(queryNodes, keyNodes, values) {
    const t = currentQuery();
    queryNodes.forEach((node, i) => node.classList.toggle("attn-selected", i === t));
    const max = values ? finiteMax(values) : 1;
    keyNodes.forEach((node, s) => {
      if (!values) {
        delete node.dataset.value;
        node.style.background = "";
        node.title = state.record.key_labels[s];
        return;
      }
      node.dataset.value = String(values[s]);
      node.title = `${state.record.key_labels[s]}: ${format(values[s])}`;
      node.style.background = `rgba(255, 140, 0, ${Math.max(0, values[s] / max) * 0.85})`;
    });
  }

  function drawRecord() {
    const view = state.record.view;
    modeButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode ===
      state.mode)));
    state.hoverKey = null;
    if (view === "matrix" && state.mode === "lines") drawLinesView();
    else if (view === "matrix") drawMatrixView();
    else if (view === "bars") drawBarsView();
    else if (view === "grid") drawGridView();
    else if (view === "image") drawImageView();
    else throw new Error(`Unknown view ${view}`);
    stage.dataset.view = view === "matrix" ? state.mode : view;
    timed(() => drawWeights());
  }

  function computeMatrix() {
    const record = state.record;
    state.matrix = headMatrix(state.weights, record.shape, state.layer, state.head);
    state.max = finiteMax(state.matrix);
  }

  // The matrix view: query labels down the left, key labels along the top, one cell a weight.
  function drawMatrixView() {
    const [, , T, S] = state.record.shape;
    const cell = Math.max(CELL_MIN_PX, Math.min(CELL_MAX_PX, Math.floor(MATRIX_MAX_PX /
      Math.max(T, S))));
    const font = Math.max(6, Math.min(12, cell - 2));
    const grid = el("div", "attn-matrix");
    grid.style.setProperty("--cell", `${cell}px`);
    grid.style.setProperty("--font", `${font}px`);
    const keys = el("div", "attn-matrix-keys");
    const keyNodes = keyLabels("attn-matrix-key");
    keys.append(...keyNodes);
    const queries = el("div", "attn-matrix-queries");
    const queryNodes = queryLabels("attn-matrix-query", (t) => setHover(t));
    queries.append(...queryNodes);
    queries.addEventListener("mouseleave", () => setHover(null));
    const canvas = el("canvas", "attn-matrix-canvas");
    canvas.dataset.cell = String(cell);
    const base = document.createElement("canvas");
    canvas.addEventListener("mousemove", (event) => {
      const s = Math.floor(event.offsetX / cell);
      const t = Math.floor(event.offsetY / cell);
      if (t < 0 || t >= T || s < 0 || s >= S) return;
      state.hoverKey = s;
      if (state.hover === t) drawQuery();
      else setHover(t);
    });
    canvas.addEventListener("mouseleave", () => {
      state.hoverKey = null;
      setHover(null);
    });
    canvas.addEventListener("click", (event) => pick(Math.floor(event.offsetY / cell)));
    grid.append(el("div", "attn-matrix-corner"), keys, queries, canvas);
    const legend = el("div", "attn-legend");
    stage.replaceChildren(grid, legend);

    drawWeights = () => {
      computeMatrix();
      paintMap(base, state.matrix, T, S, state.max);
      legend.textContent = `colour: 0 … ${format(state.max)} (largest weight shown)`;
      drawQuery();
    };
    drawQuery = () => {
      const ctx = blit(canvas, base, S * cell, T * cell);
      const t = currentQuery();
      const values = updateReadout();
      markLabels(queryNodes, keyNodes, values);
      if (t === null) return;
      ctx.strokeStyle = "#ff8c00";
      ctx.lineWidth = 2;
      ctx.strokeRect(1, t * cell + 1, S * cell - 2, cell - 2);
      if (state.hoverKey !== null) {
        ctx.strokeStyle = "#ffffff";
        ctx.strokeRect(state.hoverKey * cell + 1, t * cell + 1, cell - 2, cell - 2);
      }
    };
  }

  // The bipartite view made popular by bertviz: queries left, keys right, a line per weight.
  function drawLinesView() {
    const [, , T, S] = state.record.shape;
    const row = LINE_ROW_PX;
    const width = 260;
    const box = el("div", "attn-lines");
    box.style.setProperty("--row", `${row}px`);
    const left = el("div", "attn-lines-queries");
    const queryNodes = queryLabels("attn-lines-query", (t) => setHover(t));
    left.append(...queryNodes);
    const right = el("div", "attn-lines-keys");
    const keyNodes = keyLabels("attn-lines-key");
    right.append(...keyNodes);
    const canvas = el("canvas", "attn-lines-canvas");
    box.addEventListener("mouseleave", () => setHover(null));
    box.append(left, canvas, right);
    stage.replaceChildren(box);
    const height = Math.max(T, S) * row;

    drawWeights = () => {
      computeMatrix();
      drawQuery();
    };
    drawQuery = () => {
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext("2d");
      const t0 = currentQuery();
      const values = updateReadout();
      markLabels(queryNodes, keyNodes, values);
      ctx.lineWidth = 2;
      for (let t = 0; t < T; t++) {
        if (t0 !== null && t !== t0) continue;
        const y0 = t * row + row / 2;
        for (let s = 0; s < S; s++) {
          const a = state.matrix[t * S + s] / state.max;
          if (!(a > 0.01)) continue;
          ctx.strokeStyle = `rgba(31, 119, 180, ${Math.min(1, a)})`;
          ctx.beginPath();
          ctx.moveTo(0, y0);
          ctx.lineTo(width, s * row + row / 2);
          ctx.stroke();
        }
      }
    };
  }

  function barRows(container, S, firstKey) {
    const rows = [];
    for (let s = firstKey; s < S; s++) {
      const line = el("div", "attn-bar-row");
      const name = el("span", "attn-bar-label", state.record.key_labels[s]);
      name.title = state.record.key_labels[s];
      const track = el("span", "attn-bar-track");
      const bar = el("span", "attn-bar");
      bar.dataset.index = String(s);
      track.append(bar);
      const value = el("span", "attn-bar-value");
      line.append(name, track, value);
      container.append(line);
      rows.push([s, bar, value]);
    }
    return rows;
  }

  function fillBars(rows, values) {
    const max = values ? finiteMax(values) : 1;
    for (const [s, bar, value] of rows) {
      const v = values ? values[s] : NaN;
      bar.dataset.value = String(v);
      bar.style.width = `${Number.isFinite(v) ? Math.max(0, v / max) * 100 : 0}%`;
      value.textContent = format(v);
    }
  }

  function queryColumn() {
    const column = el("div", "attn-query-list");
    const nodes = queryLabels("attn-query-chip", () => {});
    column.append(...nodes);
    return [column, nodes];
  }

  // Bars: the selected query's weight on each named key (an agent's features).
  function drawBarsView() {
    const [, , T, S] = state.record.shape;
    const [column, queryNodes] = queryColumn();
    column.hidden = T === 1;
    const bars = el("div", "attn-bars");
    const rows = barRows(bars, S, 0);
    const box = el("div", "attn-side-by-side");
    box.append(column, bars);
    stage.replaceChildren(box, el("div", "attn-legend", "bar length: relative to the largest " +
      "weight of the query"));
    drawPerQuery(queryNodes, (values) => fillBars(rows, values));
  }

  // Views that show one query at a time: new weights recompute the matrix, then `paint`
  // draws the selected query's row (`values`, or null when no query is selected).
  function drawPerQuery(queryNodes, paint) {
    drawWeights = () => {
      computeMatrix();
      drawQuery();
    };
    drawQuery = () => {
      const values = updateReadout();
      markLabels(queryNodes, [], values);
      paint(values);
    };
  }

  // Grid: the first h*w keys as an h x w heatmap (cells, patches); any further keys as bars.
  function drawGridView() {
    const [, , T, S] = state.record.shape;
    const [gh, gw] = state.record.key_grid;
    const cell = Math.max(CELL_MIN_PX, Math.floor(GRID_PX / Math.max(gh, gw)));
    const [column, queryNodes] = queryColumn();
    column.hidden = T === 1;
    const canvas = el("canvas", "attn-grid-canvas");
    canvas.dataset.cell = String(cell);
    canvas.dataset.gridH = String(gh);
    canvas.dataset.gridW = String(gw);
    const base = document.createElement("canvas");
    canvas.addEventListener("mousemove", (event) => {
      const r = Math.floor(event.offsetY / cell);
      const c = Math.floor(event.offsetX / cell);
      state.hoverKey = r >= 0 && r < gh && c >= 0 && c < gw ? r * gw + c : null;
      drawQuery();
    });
    canvas.addEventListener("mouseleave", () => {
      state.hoverKey = null;
      drawQuery();
    });
    const extra = el("div", "attn-bars");
    const rows = barRows(extra, S, gh * gw);
    extra.hidden = !rows.length;
    const main = el("div", "attn-grid-main");
    main.append(canvas, extra);
    const box = el("div", "attn-side-by-side");
    box.append(column, main);
    const legend = el("div", "attn-legend");
    stage.replaceChildren(box, legend);
    drawPerQuery(queryNodes, (values) => {
      const row = values || new Array(S).fill(NaN);
      const max = finiteMax(row.slice(0, gh * gw));
      paintMap(base, row, gh, gw, max);
      blit(canvas, base, gw * cell, gh * cell);
      canvas.dataset.max = String(max);
      legend.textContent = `colour: 0 … ${format(max)} (largest weight on the grid)`;
      fillBars(rows, values);
    });
  }

  // Image: the generated image; a click picks the query position, whose attention map over
  // the key positions is laid over the image.
  function drawImageView() {
    const [gh, gw] = state.record.key_grid;
    const canvas = el("canvas", "attn-image-canvas");
    canvas.dataset.gridH = String(gh);
    canvas.dataset.gridW = String(gw);
    const overlay = document.createElement("canvas");
    const picture = new Image();
    const opacity = el("input", "attn-opacity");
    opacity.type = "range";
    opacity.min = "0";
    opacity.max = "100";
    opacity.value = "70";
    opacity.addEventListener("input", () => drawQuery());
    const legend = el("div", "attn-legend");
    stage.replaceChildren(canvas, labelled("Overlay", opacity), legend);
    let width = IMAGE_PX;
    let height = IMAGE_PX;
    picture.addEventListener("load", () => {
      const scale = IMAGE_PX / Math.max(picture.naturalWidth, picture.naturalHeight);
      width = Math.round(picture.naturalWidth * scale);
      height = Math.round(picture.naturalHeight * scale);
      canvas.dataset.loaded = "true";
      drawQuery();
    });
    picture.src = `data:image/png;base64,${state.record.image}`;
    canvas.addEventListener("click", (event) => {
      const r = Math.min(gh - 1, Math.floor((event.offsetY / height) * gh));
      const c = Math.min(gw - 1, Math.floor((event.offsetX / width) * gw));
      pick(r * gw + c);
    });
    drawWeights = () => {
      computeMatrix();
      drawQuery();
    };
    drawQuery = () => {
      const values = updateReadout();
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      if (picture.complete && picture.naturalWidth) ctx.drawImage(picture, 0, 0, width, height);
      const t = currentQuery();
      if (t === null || !values) return;
      const max = finiteMax(values);
      const strength = Number(opacity.value) / 100;
      paintMap(overlay, values, gh, gw, max, (a) => Math.round(255 * strength *
        Math.max(0.1, Math.min(1, a))));
      ctx.drawImage(overlay, 0, 0, width, height);
      const cw = width / gw;
      const ch = height / gh;
      const r = Math.floor(t / gw);
      const c = t % gw;
      ctx.strokeStyle = "#ff2d55";
      ctx.lineWidth = 2;
      ctx.strokeRect(c * cw + 1, r * ch + 1, Math.max(2, cw - 2), Math.max(2, ch - 2));
      canvas.dataset.max = String(max);
      legend.textContent = `query (${r}, ${c}) of the ${gh} × ${gw} map · colour: 0 … ` +
        `${format(max)}`;
    };
  }

  function redrawWeights() {
    timed(() => drawWeights());
  }

  runSelect.addEventListener("change", () => {
    root.dataset.state = "loading";
    state.run = runSelect.value;
    loadRun().catch(fail);
  });
  tagSelect.addEventListener("change", () => {
    root.dataset.state = "loading";
    state.tag = tagSelect.value;
    state.step = null;
    loadTag().catch(fail);
  });
  stepSelect.addEventListener("change", () => {
    root.dataset.state = "loading";
    state.step = stepSelect.value;
    loadRecord().catch(fail);
  });
  layerSelect.addEventListener("change", () => {
    state.layer = Number(layerSelect.value);
    redrawWeights();
  });
  headSelect.addEventListener("change", () => {
    state.head = headSelect.value;
    redrawWeights();
  });
  reload.addEventListener("click", () => {
    root.dataset.state = "loading";
    state.cache.clear();
    loadTags().catch(fail);
  });

  try {
    await loadTags();
  } catch (error) {
    fail(error);
  }
}
