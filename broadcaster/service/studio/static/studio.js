// The studio page: polls /studio/state and /studio/preview.jpg, sends the operator's actions.
// With ?token=... in the address the token is kept in sessionStorage and sent as a Bearer
// header on every request (and as ?token= on a WebSocket, which cannot carry headers).
"use strict";

const PREVIEW_MS = 250;     // 4 pictures a second: under half a second behind the program
const STATE_MS = 500;

const token = (() => {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) sessionStorage.setItem("broadcaster-token", fromUrl);
  return sessionStorage.getItem("broadcaster-token");
})();

function headers(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.toString();
}
window.studioWsUrl = wsUrl;

const $ = (id) => document.getElementById(id);

function showError(text) {
  $("error").textContent = text || "";
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST", headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body ?? {}),
  });
  let data = {};
  try { data = await resp.json(); } catch (_) { /* an empty or non-JSON answer */ }
  if (!resp.ok) showError(`${path}: ${data.detail || data.error || resp.status}`);
  else showError("");
  return { ok: resp.ok, data };
}

// -- the program picture -------------------------------------------------------------
let previewUrl = null;
async function pollPreview() {
  try {
    const resp = await fetch("preview.jpg", { headers: headers(), cache: "no-store" });
    if (resp.ok) {
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const img = $("preview");
      img.src = url;
      img.dataset.frame = resp.headers.get("X-Frame-Index") || "";
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = url;
    } else if (resp.status === 401 || resp.status === 403) {
      showError("the control endpoint wants a token: open this page with ?token=...");
    }
  } catch (_) { /* the broadcaster is restarting: try again */ }
  setTimeout(pollPreview, PREVIEW_MS);
}

// -- plots ---------------------------------------------------------------------------
function plot(canvas, points, key, color) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const values = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
  canvas.dataset.points = String(values.length);
  if (!values.length) return;
  const top = Math.max(...values) * 1.15 || 1;
  ctx.strokeStyle = "#34405a";
  ctx.beginPath();
  ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5);
  ctx.stroke();
  ctx.fillStyle = "#8b96a8";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(String(Math.round(top)), 4, 12);
  // seconds shown: the history so far (at least 30 s), up to the five minutes kept
  const span = Math.min(300, Math.max(30, ...points.map((p) => p.ago)));
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  let started = false;
  for (const p of points) {
    const v = p[key];
    if (v === null || v === undefined) continue;
    const x = w - (p.ago / span) * w;
    const y = h - (v / top) * (h - 16) - 2;
    if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
  }
  ctx.stroke();
}

// -- lists ---------------------------------------------------------------------------
function item(text, tag, cls, button) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  const t = document.createElement("span");
  t.className = "text";
  t.textContent = text;
  li.append(t);
  if (tag) {
    const s = document.createElement("span");
    s.className = "tag";
    s.textContent = tag;
    li.append(s);
  }
  if (button) li.append(button);
  return li;
}

function fill(list, items) {
  list.replaceChildren(...items);
}

function ms(v) { return v === null || v === undefined ? "-" : `${Math.round(v)} ms`; }

// -- state ---------------------------------------------------------------------------
let sceneOptions = "";
let micMuted = false;

function render(state) {
  const st = state.status;
  const badge = $("onair");
  badge.textContent = st.on_air ? "ON AIR" : "OFF AIR";
  badge.className = `badge ${st.on_air ? "on" : "off"}`;
  $("ingest").textContent = st.ingest;
  $("bitrate").textContent = st.bitrate_kbps === null ? "-" : `${st.bitrate_kbps} kbit/s`;
  $("fps").textContent = st.fps === null ? "-" : `${st.fps} fps`;
  $("queue").textContent = ms(st.queue_ms);
  $("speaker").textContent = st.speaker || "-";
  $("reconnects").textContent = String(state.reconnects);
  $("caption").textContent = state.caption || "";
  plot($("plot-bitrate"), state.history, "kbps", "#5aa9e6");
  plot($("plot-fps"), state.history, "fps", "#7bd88f");
  fill($("link-events"), state.link.slice().reverse().map(
    (e) => item(`${e.kind} ${e.detail}`, `${e.ago} s ago`)));

  const chat = state.chat;
  $("chat-form").hidden = !chat || !chat.http;
  if (chat) {
    fill($("chat-queue"), chat.queue.map((m) => {
      const skip = document.createElement("button");
      skip.textContent = "Skip";
      skip.dataset.id = m.id;
      skip.addEventListener("click", () => post("chat/remove", { id: m.id }).then(refresh));
      return item(`${m.user}: ${m.text}`, `${m.waited_s} s`, "queued", skip);
    }));
    fill($("chat-recent"), chat.recent.slice().reverse().map((e) => item(
      `${e.user}: ${e.text}`, e.reason ? `${e.outcome}: ${e.reason}` : e.outcome, e.outcome)));
  }
  const cur = state.current;
  $("current").textContent = cur ? `now: ${cur.kind}${cur.user ? ` (${cur.user})` : ""}: ${cur.text}` : "";
  fill($("turns"), (state.turns || []).slice().reverse().map((t) => item(
    `${t.kind}${t.user ? ` ${t.user}` : ""}: ${t.spoken || t.text}`,
    `${t.interrupted ? "interrupted, " : ""}first audio ${ms(t.ms.total_to_muxed)}`)));

  const scenes = state.scene.available.join("\n");
  if (scenes !== sceneOptions) {
    sceneOptions = scenes;
    fill($("scene-select"), state.scene.available.map((name) => {
      const o = document.createElement("option");
      o.value = o.textContent = name;
      return o;
    }));
  }
  $("scene-name").textContent = `scene: ${state.scene.current}`;
  if (document.activeElement !== $("scene-select")) $("scene-select").value = state.scene.current;

  const mic = state.mic;
  $("mic-mute").hidden = !mic;
  if (mic) {
    micMuted = mic.muted;
    $("mic-mute").textContent = mic.muted ? "Unmute mic" : "Mute mic";
    $("mic-state").textContent = `mic: ${mic.muted ? "muted" : mic.state}`;
  }
  document.body.dataset.ready = "1";
}

async function refresh() {
  try {
    const resp = await fetch("state", { headers: headers(), cache: "no-store" });
    if (resp.ok) render(await resp.json());
    else if (resp.status === 401 || resp.status === 403) {
      showError("the control endpoint wants a token: open this page with ?token=...");
    }
  } catch (_) { /* the broadcaster is restarting: try again */ }
}

// -- actions -------------------------------------------------------------------------
$("interrupt").addEventListener("click", () => post("/interrupt"));
$("say-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("say-text").value.trim();
  if (!text) return;
  post("/say", { text, interrupt: $("say-interrupt").checked }).then((r) => {
    if (r.ok) $("say-text").value = "";
  });
});
$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("chat-text").value.trim();
  if (!text) return;
  post("/chat", { user: $("chat-user").value.trim() || "studio", text }).then((r) => {
    if (r.ok) $("chat-text").value = "";
    refresh();
  });
});
$("scene-switch").addEventListener("click", () => post("scene", { name: $("scene-select").value }));
$("mic-mute").addEventListener("click", () => post("mic", { muted: !micMuted }).then(refresh));

refresh();
setInterval(refresh, STATE_MS);
pollPreview();
