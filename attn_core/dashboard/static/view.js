// The attention view (minimal first version): a record picker and the mean-of-heads matrix.

export function weightsOf(record) {
  const bytes = Uint8Array.from(atob(record.weights), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

function drawMatrix(root, record) {
  const [L, H, T, S] = record.shape;
  const w = weightsOf(record);
  const canvas = document.createElement("canvas");
  const cell = 16;
  canvas.width = S * cell;
  canvas.height = T * cell;
  canvas.className = "attn-canvas";
  const ctx = canvas.getContext("2d");
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < S; s++) {
      let v = 0;
      for (let h = 0; h < H; h++) v += w[((0 * H + h) * T + t) * S + s] / H;
      const g = Math.round(255 * (1 - Math.max(0, Math.min(1, v))));
      ctx.fillStyle = `rgb(${g},${g},255)`;
      ctx.fillRect(s * cell, t * cell, cell, cell);
    }
  }
  const keys = document.createElement("div");
  keys.textContent = "keys: " + record.key_labels.join(" ");
  const queries = document.createElement("div");
  queries.textContent = "queries: " + record.query_labels.join(" ");
  root.replaceChildren(keys, queries, canvas);
}

export function renderStatic(root, records) {
  root.classList.add("attn-app");
  const select = document.createElement("select");
  records.forEach((r, i) => select.add(new Option(r.name, String(i))));
  const body = document.createElement("div");
  select.onchange = () => drawMatrix(body, records[Number(select.value)]);
  root.replaceChildren(select, body);
  drawMatrix(body, records[0]);
}
