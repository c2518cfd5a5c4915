// The browser client of perslm-voice serve (protocol 1; the README's "Server" section).
// Microphone -> AudioWorklet -> 16 kHz PCM16 frames over the WebSocket; the reply's voice comes
// back as PCM16 frames, each chunk announced by a reply_audio message, and plays gaplessly
// through a second worklet that an "interrupted" message silences within one audio quantum.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
$("user").value = params.get("user") || localStorage.getItem("perslm-user") || "";

let ws = null, ctx = null, player = null, mic = null, stream = null;
let outputRate = 22050, audioTurn = null, reportedTurn = null, ready = false;
const silenced = new Set();   // turns whose voice was interrupted: later frames are dropped
const replies = new Map();    // turn -> the assistant's line

function setState(name, label) {
  const el = $("state");
  el.textContent = label || name;
  el.className = "state " + name;
}
function status(text, isError) {
  $("status").textContent = text || "";
  $("status").className = isError ? "error" : "muted";
}
function line(who, text) {
  const div = document.createElement("div");
  div.className = "turn " + who;
  const name = document.createElement("span");
  name.className = "who";
  name.textContent = who === "you" ? "You:" : "Assistant:";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  div.append(name, body);
  $("conversation").append(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function toFloat(int16) {
  const f = new Float32Array(int16.length);
  for (let i = 0; i < int16.length; i++) f[i] = int16[i] / 32768;
  return f;
}
function resample(samples, from, to) {
  if (from === to) return samples;
  const n = Math.round(samples.length * to / from), out = new Float32Array(n), step = from / to;
  for (let i = 0; i < n; i++) {
    const x = i * step, j = Math.floor(x), t = x - j;
    out[i] = (samples[j] || 0) * (1 - t) + (samples[j + 1] !== undefined ? samples[j + 1] : samples[j] || 0) * t;
  }
  return out;
}

function onMessage(event) {
  if (typeof event.data !== "string") {
    if (audioTurn === null || silenced.has(audioTurn) || !player) return;
    const pcm = new Int16Array(event.data);
    player.port.postMessage(resample(toFloat(pcm), outputRate, ctx.sampleRate));
    return;
  }
  const m = JSON.parse(event.data);
  switch (m.type) {
    case "ready":
      ready = true;  // the microphone opens now; its frames go out from now on
      if (m.hearing) startMic();
      else $("mic").textContent = "";
      outputRate = m.output_sample_rate;
      setState("listening", "Listening");
      status(m.hearing ? "Talk, or type below." : "Speech-to-text is not available: type below.");
      $("text").disabled = $("send").disabled = false;
      break;
    case "state": setState(m.state, m.label); break;
    case "partial_transcript": $("partial").textContent = m.text + " …"; break;
    case "transcript":
      $("partial").textContent = "";
      if (m.source === "voice") line("you", m.text);
      break;
    case "reply_started": replies.set(m.turn, line("assistant", "")); break;
    case "reply_delta": {
      const el = replies.get(m.turn);
      if (el) el.querySelector(".text").textContent += m.text;
      break;
    }
    case "reply_audio":
      if (m.turn !== audioTurn && player) player.port.postMessage("reset");
      audioTurn = m.turn;
      break;
    case "interrupted":
      if (player) player.port.postMessage("flush");
      silenced.add(m.turn);
      break;
    case "reply_done": {
      const el = replies.get(m.turn);
      if (el && m.interrupted) {
        const note = document.createElement("span");
        note.className = "interrupted";
        note.textContent = m.heard ? `(interrupted; heard: “${m.heard}”)` : "(interrupted)";
        el.append(note);
      }
      break;
    }
    case "timings": {
      const el = replies.get(m.turn), ms = m.ms || {};
      const voice = ms.first_audio_played, first = voice ?? ms.first_token;
      if (el && first !== undefined) {
        const lat = document.createElement("span");
        lat.className = "latency";
        lat.textContent = `${voice !== undefined ? "voice" : "text"} after ${first} ms`;
        lat.title = Object.entries(ms).map(([k, v]) => `${k}: ${v} ms`).join("\n");
        el.append(lat);
      }
      break;
    }
    case "not_heard": if (m.message) status(m.message); break;
    case "notice": status(m.text, m.level === "error"); break;
    case "error": status(m.message, true); break;
    case "session_ended": status("The session has ended."); break;
  }
}

async function start() {
  $("start").disabled = true;
  const user = $("user").value.trim() || "default";
  localStorage.setItem("perslm-user", user);
  ctx = new AudioContext();
  await ctx.audioWorklet.addModule("static/worklets.js");
  player = new AudioWorkletNode(ctx, "player-processor", { outputChannelCount: [1] });
  player.connect(ctx.destination);
  player.port.onmessage = (e) => {
    if (ws && ws.readyState === 1 && audioTurn !== null && !silenced.has(audioTurn) && (e.data.played || reportedTurn !== audioTurn)) {
      reportedTurn = audioTurn;
      ws.send(JSON.stringify({ type: "playback", turn: audioTurn, played_ms: Math.round(e.data.played / ctx.sampleRate * 1000) }));
    }
  };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", user, protocol: 1 }));
  ws.onmessage = onMessage;
  ws.onclose = (e) => {
    ready = false;
    setState("stopped", "not connected");
    $("text").disabled = $("send").disabled = true;
    $("start").disabled = false; $("stop").disabled = true;
    if (e.code === 1006 || e.code === 1008) status("Refused: is the token in the address right? Open the URL that serve printed.", true);
    stopMic();
  };
  $("stop").disabled = false;
  $("mic").textContent = "microphone: once the assistant is ready";
}
// The microphone opens once the session is ready (the server's models loaded): the page shows
// "microphone on" only when what the user says is heard. (It used to open at once and drop the
// frames until then: a question begun while the models loaded was heard as "of France.")
async function startMic() {
  try {
    // The browser's echo cancellation keeps the assistant's voice out of the microphone. Its noise
    // suppression stays off: Whisper is trained on noisy speech and hears suppressed speech worse
    // (in the browser test, "the capital of France" came out as "the capital of friends").
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: true, channelCount: 1 },
    });
    const source = ctx.createMediaStreamSource(stream);
    mic = new AudioWorkletNode(ctx, "mic-processor");
    mic.port.onmessage = (e) => { if (ready && ws && ws.readyState === 1) ws.send(e.data); };
    if (!ready) { stopMic(); return; }  // the connection closed while the browser asked
    source.connect(mic);
    $("mic").textContent = "microphone on";
  } catch (err) {
    $("mic").textContent = `no microphone (${err.name}): type instead`;
  }
}
function stopMic() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (mic) mic.disconnect();
  stream = mic = null;
  $("mic").textContent = "";
}

$("start").onclick = () => start().catch((err) => { status(String(err), true); $("start").disabled = false; });
$("stop").onclick = () => { if (ws) ws.close(); if (player) player.port.postMessage("flush"); };
$("typed").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !ws || ws.readyState !== 1) return;
  if (player) player.port.postMessage("flush");
  line("you", text);
  ws.send(JSON.stringify({ type: "text", text }));
  $("text").value = "";
};
