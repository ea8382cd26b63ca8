// restorekit's page: the REST API of restorekit.serve.app, no framework, no build step.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const auth = token ? { Authorization: "Bearer " + token } : {};

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...auth, ...(options.headers || {}) } });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${message}`);
  }
  return response;
}
const url = (path) => (token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path);

// tabs
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  document.querySelectorAll(".tab, .panel").forEach((e) => e.classList.remove("active"));
  tab.classList.add("active");
  $(tab.dataset.tab).classList.add("active");
}));

// file pickers with drag and drop
function picker(drop, input, label) {
  const state = { files: [] };
  const show = () => { $(label).textContent = state.files.length ? state.files.map((f) => f.name).join(", ") : "No files chosen."; };
  input.addEventListener("change", () => { state.files = [...input.files]; show(); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); state.files = [...e.dataTransfer.files]; show(); });
  return state;
}
const restoreFiles = picker($("drop"), $("files"), "picked");
const trainFiles = picker($("train-drop"), $("train-files"), "train-picked");

// models
let models = [];
async function loadModels(select) {
  models = await (await api("/api/models")).json();
  const model = $("model");
  model.innerHTML = "";
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.task}${m.scales.length ? " x" + m.scales.join("/x") : ""}${m.shipped ? "" : ", yours"})`;
    model.appendChild(option);
  }
  const preferred = select || (models.find((m) => m.default) || {}).name;
  if (preferred) model.value = preferred;
  showModel();
}
function showModel() {
  const m = models.find((x) => x.name === $("model").value);
  if (!m) return;
  $("scale-box").hidden = m.task !== "upscale";
  $("scale").innerHTML = m.scales.map((s) => `<option value="${s}">x${s}</option>`).join("");
  const figures = Object.entries(m.figures).map(([set, f]) => `${set}: ${f.psnr_in.toFixed(2)} → ${f.psnr.toFixed(2)} dB`);
  $("model-info").textContent = `${m.arch}, ${m.channels} channel(s)${m.noise ? ", trained for " + m.noise : ""}. ` +
    (figures.length ? "Measured: " + figures.join("; ") : "");
}
$("model").addEventListener("change", showModel);

// restore jobs
$("run").addEventListener("click", async () => {
  $("error").textContent = "";
  if (!restoreFiles.files.length) { $("error").textContent = "Choose one or more images first."; return; }
  const form = new FormData();
  restoreFiles.files.forEach((f) => form.append("files", f));
  [...$("references").files].forEach((f) => form.append("references", f));
  form.append("model", $("model").value);
  if (!$("scale-box").hidden) form.append("scale", $("scale").value);
  if ($("ensemble").checked) form.append("ensemble", "true");
  if ($("format").value) form.append("format", $("format").value);
  try {
    const { id } = await (await api("/api/jobs", { method: "POST", body: form })).json();
    watch(id, restoreFiles.files.map((f) => f.name));
  } catch (error) { $("error").textContent = error.message; }
});

function watch(id, names) {
  const item = document.createElement("li");
  item.className = "job";
  item.dataset.id = id;
  item.innerHTML = `<div class="files"></div><div class="progress"><div></div></div><span class="state">queued</span> <span class="actions"></span><div class="results small"></div>`;
  item.querySelector(".files").textContent = `${$("model").value}: ${names.join(", ")}`;
  $("jobs").prepend(item);
  const cancel = document.createElement("button");
  cancel.textContent = "Cancel";
  cancel.className = "cancel";
  cancel.addEventListener("click", () => api(`/api/jobs/${id}`, { method: "DELETE" }).catch(() => {}));
  item.querySelector(".actions").appendChild(cancel);
  const timer = setInterval(async () => {
    let status;
    try { status = await (await api(`/api/jobs/${id}`)).json(); } catch (error) { clearInterval(timer); item.querySelector(".state").textContent = error.message; return; }
    item.querySelector(".progress > div").style.width = `${Math.round(status.progress * 100)}%`;
    const tiles = status.tiles_total > 1 ? ` (tiles ${status.tiles_done}/${status.tiles_total})` : "";
    item.querySelector(".state").textContent = status.state + tiles + (status.message ? ": " + status.message : "");
    if (["done", "failed", "cancelled"].includes(status.state)) {
      clearInterval(timer);
      cancel.remove();
      finished(item, status);
    }
  }, 300);
}

function finished(item, status) {
  const actions = item.querySelector(".actions");
  if (status.state === "done") {
    const link = document.createElement("a");
    link.href = url(`/api/jobs/${status.id}/result`);
    link.textContent = "Download";
    link.className = "download";
    link.setAttribute("download", "");
    actions.appendChild(link);
  }
  const lines = status.results.map((r, i) => {
    if (r.error) return `${r.file}: ${r.error}`;
    return `${r.file} → ${r.output}${r.psnr != null ? `, PSNR ${r.psnr.toFixed(2)} dB` : ""}${r.warnings.length ? " (" + r.warnings.join("; ") + ")" : ""}`;
  });
  item.querySelector(".results").textContent = lines.join("\n");
  let outputIndex = 0;
  status.results.forEach((r, i) => {
    if (!r.output) return;
    const button = document.createElement("button");
    button.textContent = `Compare ${r.file}`;
    button.className = "compare";
    const index = outputIndex++;
    button.addEventListener("click", () => compare(status.id, i, index, r.file));
    actions.appendChild(button);
  });
  if (status.state === "done" && status.results.filter((r) => r.output).length) {
    const first = status.results.findIndex((r) => r.output);
    compare(status.id, first, 0, status.results[first].file);
  }
}

// the before/after viewer: slider, wheel zoom, drag pan, 1:1
const view = { scale: 1, x: 0, y: 0, width: 0, height: 0 };
function compare(id, inputIndex, outputIndex, name) {
  $("viewer").hidden = false;
  $("viewer-title").textContent = name;
  const after = $("after"), before = $("before");
  after.onload = () => {
    view.width = after.naturalWidth; view.height = after.naturalHeight;
    for (const img of [after, before]) { img.style.width = view.width + "px"; img.style.height = view.height + "px"; }
    $("canvas").style.width = view.width + "px"; $("canvas").style.height = view.height + "px";
    fit(); clip();
  };
  before.src = url(`/api/jobs/${id}/preview/${inputIndex}?which=input`);
  after.src = url(`/api/jobs/${id}/preview/${outputIndex}?which=output`);
}
function apply() {
  $("canvas").style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  $("zoom-level").textContent = `${Math.round(view.scale * 100)} %`;
}
function clip() {
  const percent = Number($("slider").value);
  $("after").style.clipPath = `inset(0 0 0 ${percent}%)`;
  const divider = $("divider");
  divider.style.left = `${(percent / 100) * view.width}px`;
  divider.style.height = view.height + "px";
}
function fit() {
  const stage = $("stage").getBoundingClientRect();
  view.scale = Math.min(stage.width / view.width, stage.height / view.height, 1) || 1;
  view.x = (stage.width - view.width * view.scale) / 2; view.y = (stage.height - view.height * view.scale) / 2;
  apply();
}
$("slider").addEventListener("input", clip);
$("fit").addEventListener("click", fit);
$("one-to-one").addEventListener("click", () => {
  const stage = $("stage").getBoundingClientRect();
  const cx = (stage.width / 2 - view.x) / view.scale, cy = (stage.height / 2 - view.y) / view.scale;
  view.scale = 1; view.x = stage.width / 2 - cx; view.y = stage.height / 2 - cy; apply();
});
$("stage").addEventListener("wheel", (e) => {
  e.preventDefault();
  const stage = $("stage").getBoundingClientRect();
  const px = e.clientX - stage.left, py = e.clientY - stage.top;
  const factor = e.deltaY < 0 ? 1.25 : 0.8;
  const scale = Math.min(32, Math.max(0.05, view.scale * factor));
  view.x = px - ((px - view.x) * scale) / view.scale; view.y = py - ((py - view.y) * scale) / view.scale;
  view.scale = scale; apply();
}, { passive: false });
let drag = null;
$("stage").addEventListener("pointerdown", (e) => { drag = { x: e.clientX - view.x, y: e.clientY - view.y }; });
window.addEventListener("pointermove", (e) => { if (drag) { view.x = e.clientX - drag.x; view.y = e.clientY - drag.y; apply(); } });
window.addEventListener("pointerup", () => { drag = null; });

// training
$("train-run").addEventListener("click", async () => {
  $("train-error").textContent = "";
  if (!trainFiles.files.length) { $("train-error").textContent = "Choose your noisy images first."; return; }
  const form = new FormData();
  trainFiles.files.forEach((f) => form.append("files", f));
  form.append("method", $("method").value);
  form.append("budget", $("budget").value);
  if ($("train-name").value) form.append("name", $("train-name").value);
  try {
    const { id } = await (await api("/api/train", { method: "POST", body: form })).json();
    $("train-job").hidden = false;
    const timer = setInterval(async () => {
      const status = await (await api(`/api/jobs/${id}`)).json();
      $("train-bar").style.width = `${Math.round(status.progress * 100)}%`;
      $("train-state").textContent = `${status.state}${status.message ? ": " + status.message : ""}; ${status.loss.length} loss points`;
      plot(status.loss);
      if (["done", "failed", "cancelled"].includes(status.state)) {
        clearInterval(timer);
        if (status.model_ready) loadModels(status.model_ready);
      }
    }, 1000);
  } catch (error) { $("train-error").textContent = error.message; }
});

function plot(points) {
  const canvas = $("loss"), context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) return;
  const steps = points.map((p) => p[0]), losses = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)], [y0, y1] = [Math.min(...losses), Math.max(...losses)];
  const X = (v) => 40 + ((v - x0) / (x1 - x0 || 1)) * (canvas.width - 50);
  const Y = (v) => canvas.height - 20 - ((v - y0) / (y1 - y0 || 1)) * (canvas.height - 40);
  context.strokeStyle = "#25c"; context.beginPath();
  points.forEach(([s, l], i) => (i ? context.lineTo(X(s), Y(l)) : context.moveTo(X(s), Y(l))));
  context.stroke();
  context.fillStyle = "#444"; context.font = "12px sans-serif";
  context.fillText(`loss ${y1.toPrecision(3)}`, 2, 14); context.fillText(`${y0.toPrecision(3)}`, 2, canvas.height - 22);
  context.fillText(`step ${x1}`, canvas.width - 70, canvas.height - 4);
}

loadModels().catch((error) => { $("error").textContent = error.message; });
