"use strict";
// The studio's page: pictures and figures from the WebSocket, commands back over it, pictures and
// model files posted to the server. Everything carries the token the studio printed.

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const poolCanvases = Array.from(document.querySelectorAll("#pool canvas"));
const state = { losses: [], run: -1, frames: 0, figures: null, lossDirty: false, socket: null };
window.studio = state;  // for whoever inspects the page

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (e) => (typeof e.data === "string" ? onMessage(JSON.parse(e.data)) : onPicture(e.data));
  socket.onclose = () => { $("status").textContent = "disconnected"; setTimeout(connect, 1000); };
  state.socket = socket;
}

function send(command) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(command));
  else say("error", "not connected to the studio");
}

// -- what arrives -----------------------------------------------------------------------------

function onPicture(buffer) {
  const view = new DataView(buffer);
  const channel = view.getUint8(0), h = view.getUint16(2, true), w = view.getUint16(4, true);
  const canvas = channel === 0 ? $("live") : channel === 1 ? $("target") : poolCanvases[channel - 2];
  if (!canvas) return;
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(buffer, 6, w * h * 4), w, h), 0, 0);
  if (channel === 0) state.frames += 1;
}

function onMessage(m) {
  if (m.type === "figures") showFigures(m);
  else if (m.type === "losses") {
    if (m.start === 0) state.losses = [];
    state.losses.length = m.start;
    for (const v of m.values) state.losses.push(v);  // (no spread: a long run has many)
    state.lossDirty = true;
  } else if (m.type === "notice") say(m.level, m.text, m.file);
  else if (m.type === "error") say("error", m.text);
}

function clock(seconds) {
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
    : `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
}

function showFigures(f) {
  state.figures = f;
  $("iteration").textContent = f.iteration;
  $("rate").textContent = f.rate.toFixed(1);
  $("elapsed").textContent = clock(f.elapsed);
  $("loss-value").textContent = f.loss === null ? "-" : f.loss.toFixed(5);
  $("lr").textContent = f.lr.toExponential(1);
  $("mode").textContent = f.mode;
  $("status").textContent = f.paused ? "paused" : "training";
  $("pause").textContent = f.paused ? "Resume" : "Pause";
  $("target-name").textContent = f.target;
  $("live-steps").textContent = f.live_steps;
  $("save-name").placeholder = f.save_name;
  poolCanvases.forEach((c, i) => { c.style.visibility = i < f.pool_count ? "visible" : "hidden"; });
  for (const input of document.querySelectorAll("[data-knob]")) {
    const value = f.knobs[input.dataset.knob];
    if (document.activeElement === input) continue;  // not while someone is changing it
    if (input.type === "checkbox") input.checked = value; else input.value = value;
    const shown = document.querySelector(`output[data-for="${input.dataset.knob}"]`);
    if (shown) shown.textContent = value;
  }
}

function say(level, text, file) {
  const item = document.createElement("li");
  item.className = level;
  item.textContent = text;
  $("messages").prepend(item);
  if (file) {
    const link = document.createElement("a");
    link.href = `files/${encodeURIComponent(file)}?token=${encodeURIComponent(token)}`;
    link.textContent = file;
    link.download = file;
    const row = document.createElement("li");
    row.append(link);
    $("saved").prepend(row);
  }
}

// -- the loss curve ---------------------------------------------------------------------------

function drawLoss() {
  const canvas = $("loss"), ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, left = 34;
  ctx.clearRect(0, 0, W, H);
  const logs = state.losses.map((v) => (v > 0 ? Math.log10(v) : NaN));
  const finite = logs.filter(Number.isFinite);
  $("loss-count").textContent = state.losses.length;
  if (finite.length < 2) return;
  const lo = Math.floor(finite.reduce((a, b) => Math.min(a, b))),
    hi = Math.max(lo + 1, Math.ceil(finite.reduce((a, b) => Math.max(a, b))));
  const y = (l) => H - 4 - (l - lo) / (hi - lo) * (H - 8);
  ctx.font = "10px sans-serif"; ctx.fillStyle = "#777"; ctx.strokeStyle = "#e3e3e3";
  for (let d = lo; d <= hi; d++) {
    ctx.beginPath(); ctx.moveTo(left, y(d)); ctx.lineTo(W, y(d)); ctx.stroke();
    ctx.fillText(`1e${d}`, 2, Math.max(10, Math.min(H - 2, y(d) + 3)));
  }
  ctx.strokeStyle = "#1565c0"; ctx.beginPath();
  const columns = W - left, per = logs.length / columns;
  let started = false;
  for (let x = 0; x < columns; x++) {
    const part = logs.slice(Math.floor(x * per), Math.max(Math.floor((x + 1) * per), Math.floor(x * per) + 1))
      .filter(Number.isFinite);
    if (!part.length) continue;
    const py = y(part.reduce((a, b) => a + b, 0) / part.length);
    if (started) ctx.lineTo(left + x, py); else { ctx.moveTo(left + x, py); started = true; }
  }
  ctx.stroke();
}

// -- what the user does -----------------------------------------------------------------------

function cellAt(canvas, e) {
  const box = canvas.getBoundingClientRect();
  return [(e.clientY - box.top) / box.height * canvas.height, (e.clientX - box.left) / box.width * canvas.width];
}

function setUpWounds() {
  const live = $("live");
  let pressed = false, last = 0;
  const wound = (e) => {
    const [row, col] = cellAt(live, e);
    send({ cmd: "wound", row, col, radius: Number($("wound-radius").value) });
    last = performance.now();
  };
  live.addEventListener("pointerdown", (e) => { pressed = true; live.setPointerCapture(e.pointerId); wound(e); });
  live.addEventListener("pointermove", (e) => { if (pressed && performance.now() - last > 40) wound(e); });
  live.addEventListener("pointerup", () => { pressed = false; });
  $("wound-radius").addEventListener("input", (e) => { $("wound-radius-value").textContent = e.target.value; });
}

async function post(path, body) {
  try {
    const response = await fetch(path, { method: "POST", body, headers: { "X-NCA-Token": token } });
    const answer = await response.json();
    say(answer.error ? "error" : "info", answer.error || answer.ok);
  } catch (error) {
    say("error", `the studio did not answer: ${error}`);
  }
}

function setUpDrawing() {
  const canvas = $("draw"), ctx = canvas.getContext("2d");
  const colours = ["#e53935", "#fb8c00", "#fdd835", "#43a047", "#1e88e5", "#8e24aa", "#6d4c41", "#212121", "eraser"];
  let colour = colours[0], pressed = false, previous = null;
  for (const c of colours) {
    const b = document.createElement("button");
    b.title = c; b.style.background = c === "eraser" ? "#fff" : c; b.textContent = c === "eraser" ? "⌫" : "";
    b.addEventListener("click", () => {
      colour = c;
      document.querySelectorAll("#palette button").forEach((x) => x.classList.toggle("chosen", x === b));
    });
    $("palette").append(b);
  }
  $("palette").firstChild.classList.add("chosen");
  const stroke = (e) => {
    const [y, x] = cellAt(canvas, e);
    ctx.globalCompositeOperation = colour === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = colour === "eraser" ? "#000" : colour;
    ctx.lineWidth = Number($("brush").value); ctx.lineCap = "round";
    ctx.beginPath(); ctx.moveTo(...(previous || [x, y])); ctx.lineTo(x, y); ctx.stroke();
    previous = [x, y];
  };
  canvas.addEventListener("pointerdown", (e) => { pressed = true; previous = null; canvas.setPointerCapture(e.pointerId); stroke(e); });
  canvas.addEventListener("pointermove", (e) => { if (pressed) stroke(e); });
  canvas.addEventListener("pointerup", () => { pressed = false; });
  $("draw-clear").addEventListener("click", () => ctx.clearRect(0, 0, canvas.width, canvas.height));
  $("draw-use").addEventListener("click", () => canvas.toBlob((blob) => post("target?name=drawing", blob), "image/png"));
}

function setUpControls() {
  $("pause").addEventListener("click", () => send({ cmd: state.figures && state.figures.paused ? "resume" : "pause" }));
  $("reset-live").addEventListener("click", () => send({ cmd: "reset_live" }));
  for (const b of document.querySelectorAll("#emoji button")) b.addEventListener("click", () => send({ cmd: "emoji", text: b.textContent }));
  $("emoji-use").addEventListener("click", () => send({ cmd: "emoji", text: $("emoji-text").value }));
  $("picture-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) post(`target?name=${encodeURIComponent(file.name)}`, file);
    e.target.value = "";
  });
  $("model-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) post("model", file);
    e.target.value = "";
  });
  $("save").addEventListener("click", () => send({ cmd: "save", name: $("save-name").value }));
  for (const input of document.querySelectorAll("[data-knob]")) {
    input.addEventListener("change", () => {
      const kind = input.dataset.kind;
      const value = kind === "bool" ? input.checked : kind === "int" ? parseInt(input.value, 10) : parseFloat(input.value);
      send({ cmd: "knobs", [input.dataset.knob]: value });
      input.blur();
    });
  }
}

setInterval(() => { $("fps").textContent = state.frames; state.frames = 0; }, 1000);
setInterval(() => { if (state.lossDirty) { state.lossDirty = false; drawLoss(); } }, 250);
setUpWounds();
setUpDrawing();
setUpControls();
connect();
