// stream_server test softphone: microphone → POST /v1/webrtc/offer → recvonly answer.
// Only textContent and .value are written: nothing from the URL or the server becomes markup.
"use strict";

const RESERVED = new Set(["token", "track", "autostart", "hangup_after"]);
const FIELDS = ["from", "utm_source", "tracking_number"];
let pc = null;
let stream = null;
let hangupTimer = null;

function $(id) { return document.getElementById(id); }
function setStatus(text) { $("status").textContent = text; document.title = "softphone: " + text; }

function fragmentParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

function prefill(params) {
  if (params.has("token")) $("token").value = params.get("token");
  if (params.get("track") === "agent") $("track").value = "agent";
  const extra = [];
  for (const [key, value] of params) {
    if (RESERVED.has(key)) continue;
    if (FIELDS.includes(key)) $(key).value = value;
    else extra.push(key + "=" + value);
  }
  $("extra").value = extra.join("\n");
}

function metadata() {
  const out = {};
  for (const key of FIELDS) if ($(key).value) out[key] = $(key).value;
  for (const line of $("extra").value.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

function iceComplete(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (peer.iceGatheringState === "complete") resolve(); };
    peer.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000);  // send what was gathered; the server does no trickle ICE
  });
}

async function call(hangupAfter) {
  $("call").disabled = true;
  setStatus("asking for the microphone");
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    pc = new RTCPeerConnection();
    pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly", streams: [stream] });
    pc.addEventListener("connectionstatechange", () => {
      setStatus(pc ? pc.connectionState : "ended");
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc);
    setStatus("sending offer");
    const headers = { "Content-Type": "application/json" };
    if ($("token").value) headers.Authorization = "Bearer " + $("token").value;
    const response = await fetch("/v1/webrtc/offer", {
      method: "POST",
      headers,
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, track: $("track").value, metadata: metadata() }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error("server said " + response.status + ": " + (body.detail || ""));
    $("call_id").textContent = String(body.call_id);
    await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    $("hangup").disabled = false;
    if (hangupAfter > 0) hangupTimer = setTimeout(hangup, hangupAfter * 1000);
  } catch (err) {
    setStatus("failed: " + err.message);
    hangup(true);
  }
}

function hangup(keepStatus) {
  clearTimeout(hangupTimer);
  if (pc) pc.close();  // sends RTCP BYE: the server ends the call as completed
  pc = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("call").disabled = false;
  $("hangup").disabled = true;
  if (keepStatus !== true) setStatus("hung up");
}

document.addEventListener("DOMContentLoaded", () => {
  const params = fragmentParams();
  prefill(params);
  $("form").addEventListener("submit", (e) => { e.preventDefault(); call(0); });
  $("hangup").addEventListener("click", () => hangup());
  if (params.get("autostart") === "1") call(Number(params.get("hangup_after")) || 0);
});
