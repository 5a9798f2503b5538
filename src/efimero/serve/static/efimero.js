// efimero.js: the ephemeral-frontend client. A dependency-free ES module.
//
//   import { adapt, rate } from "/static/efimero.js";
//   await adapt();                 // predict, apply the style, start measuring the session
//   rate(5);                       // optional explicit rating, sent with the interaction log
//
// It collects the browser context, asks /v1/predict for a style, puts the three classes on
// <html> and sets the CSS variables, keeps the visitor's history in localStorage, measures the
// session (duration, scroll depth, clicks, bounce) and sends the interaction log with
// navigator.sendBeacon when the page is hidden. If the service is down or slow the page keeps
// its default style: nothing here ever throws into the page.

const HISTORY_KEY = "efimero.history";
const SESSION_KEY = "efimero.session";
const CLASS_PATTERN = /^(densidad|fuente|tema)-/;

const pad = (n) => String(n).padStart(2, "0");

function localTime(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function media(query) {
  return typeof matchMedia === "function" && matchMedia(query).matches;
}

function readJSON(storage, key, fallback) {
  try { return JSON.parse(storage.getItem(key)) ?? fallback; } catch { return fallback; }
}

function writeJSON(storage, key, value) {
  try { storage.setItem(key, JSON.stringify(value)); } catch { /* storage full or disabled */ }
}

function wholeNumber(value, max) {
  return Number.isInteger(value) ? Math.min(Math.max(value, 0), max) : 0;
}

/** The visitor's history, repaired field by field: the service refuses a string where a number belongs. */
export function loadHistory() {
  const stored = readJSON(localStorage, HISTORY_KEY, {});
  const average = Number(stored?.avg_session_duration_s);
  const firstVisit = stored?.first_visit;
  return {
    visits: wholeNumber(stored?.visits, 10_000_000),
    avg_session_duration_s: Number.isFinite(average) ? Math.min(Math.max(average, 0), 86_400) : 0,
    total_interactions: wholeNumber(stored?.total_interactions, 10_000_000),
    first_visit: typeof firstVisit === "string" && /^20\d\d-\d\d-\d\d$/.test(firstVisit) ? firstVisit : null,
  };
}

function sessionId() {
  let id = sessionStorage.getItem(SESSION_KEY);
  if (!id) {
    id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
    try { sessionStorage.setItem(SESSION_KEY, id); } catch { /* private mode */ }
  }
  return id;
}

/** The raw context that /v1/predict expects (see the OpenAPI docs at /docs). */
export function collectContext(history = loadHistory()) {
  const now = new Date();
  const connection = navigator.connection || {};
  const pointer = media("(pointer: coarse)") ? "coarse" : media("(pointer: fine)") ? "fine" : "none";
  const uaMobile = navigator.userAgentData?.mobile ?? /Mobi|Android|iPhone/i.test(navigator.userAgent);
  return {
    local_time: localTime(now),
    timezone_offset_min: now.getTimezoneOffset(),
    viewport_width: Math.max(1, window.innerWidth),
    viewport_height: Math.max(1, window.innerHeight),
    screen_width: Math.max(1, screen.width),
    screen_height: Math.max(1, screen.height),
    device_pixel_ratio: window.devicePixelRatio || 1,
    max_touch_points: navigator.maxTouchPoints || 0,
    pointer,
    ua_mobile: uaMobile,
    prefers_color_scheme: media("(prefers-color-scheme: dark)") ? "dark"
      : media("(prefers-color-scheme: light)") ? "light" : "no-preference",
    prefers_reduced_motion: media("(prefers-reduced-motion: reduce)"),
    prefers_contrast: media("(prefers-contrast: more)") ? "more" : media("(prefers-contrast: less)") ? "less" : "no-preference",
    connection_effective_type: connection.effectiveType ?? null,
    connection_downlink_mbps: connection.downlink ?? null,
    history,
    session_id: sessionId(),
  };
}

/** Put the predicted classes on <html> and the variables on its style. */
export function applyStyle(prediction, context) {
  const root = document.documentElement;
  for (const name of [...root.classList]) if (CLASS_PATTERN.test(name)) root.classList.remove(name);
  for (const name of Object.values(prediction.css_classes)) root.classList.add(name);
  for (const [name, value] of Object.entries(prediction.css_variables)) root.style.setProperty(name, value);
  if (context.prefers_reduced_motion) root.style.setProperty("--animation-duration", "0ms");
  root.dataset.efimeroVersion = prediction.model_version;
  root.dataset.efimeroPrediction = prediction.prediction_id;
}

const session = { started: 0, clicks: 0, clickedTargets: new Set(), maxScroll: 0, rating: null, feedback: null, sent: false };

function scrollDepth() {
  const page = document.documentElement;
  const height = Math.max(page.scrollHeight, 1);
  return Math.min(1, (window.scrollY + window.innerHeight) / height);
}

function measure() {
  session.started = performance.now();
  session.maxScroll = scrollDepth();
  addEventListener("scroll", () => { session.maxScroll = Math.max(session.maxScroll, scrollDepth()); }, { passive: true });
  addEventListener("click", (event) => {
    session.clicks += 1;
    const target = event.target.closest?.("a, button");
    if (target) session.clickedTargets.add(target);
  }, { capture: true, passive: true });
}

function pageLoadTime() {
  const [navigation] = performance.getEntriesByType?.("navigation") ?? [];
  return Math.max(0, navigation && navigation.loadEventEnd > 0 ? navigation.loadEventEnd : performance.now());
}

function interactionLog(prediction, renderingTime) {
  const duration = Math.round(performance.now() - session.started);
  const clickable = Math.max(1, document.querySelectorAll("a, button").length);
  const log = {
    prediction_id: prediction.prediction_id,
    session_id: sessionId(),
    session_duration: duration,
    interactions_count: session.clicks,
    bounce_rate: session.clicks === 0 && session.maxScroll < 0.5 ? 1 : 0,
    scroll_depth: Number(session.maxScroll.toFixed(4)),
    click_through_rate: Number(Math.min(1, session.clickedTargets.size / clickable).toFixed(4)),
    page_load_time: Math.round(pageLoadTime()),
    rendering_time: Math.round(renderingTime),
    // Whole code points: cutting inside a surrogate pair would leave text the service refuses.
    device_info: { user_agent: Array.from(navigator.userAgent).slice(0, 200).join(""), language: navigator.language },
    network_conditions: navigator.connection
      ? { effective_type: navigator.connection.effectiveType ?? null, rtt: navigator.connection.rtt ?? null } : null,
  };
  if (session.rating !== null) log.user_satisfaction = session.rating;
  if (session.feedback) log.ui_preference_feedback = session.feedback;
  return log;
}

function rememberVisit(history) {
  const seconds = (performance.now() - session.started) / 1000;
  const visits = history.visits + 1;
  writeJSON(localStorage, HISTORY_KEY, {
    visits,
    avg_session_duration_s: Number(((history.avg_session_duration_s * history.visits + seconds) / visits).toFixed(1)),
    total_interactions: history.total_interactions + session.clicks,
    first_visit: history.first_visit ?? localTime(new Date()).slice(0, 10),
  });
}

function sendOnHide(endpoint, prediction, history, renderingTime) {
  const send = () => {
    if (session.sent) return;
    session.sent = true;
    rememberVisit(history);
    if (!prediction) return;
    const body = new Blob([JSON.stringify(interactionLog(prediction, renderingTime))], { type: "application/json" });
    if (!navigator.sendBeacon?.(`${endpoint}/v1/interactions`, body)) {
      fetch(`${endpoint}/v1/interactions`, { method: "POST", body, keepalive: true }).catch(() => {});
    }
  };
  addEventListener("pagehide", send);
  addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") send(); });
}

/** An explicit rating (1–5) and optional feedback, sent with the interaction log. */
export function rate(stars, feedback = null) {
  session.rating = Math.min(5, Math.max(1, Math.round(stars)));
  session.feedback = feedback;
}

/**
 * Predict and apply this visitor's style, then measure the session.
 * Resolves to the prediction, or null when the service could not answer in time.
 */
export async function adapt({ endpoint = "", timeoutMs = 2000 } = {}) {
  const started = performance.now();
  const history = loadHistory();
  let prediction = null;
  try {
    const context = collectContext(history);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const response = await fetch(`${endpoint}/v1/predict`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify(context), signal: controller.signal,
    });
    clearTimeout(timer);
    if (!response.ok) throw new Error(`/v1/predict answered ${response.status}`);
    prediction = await response.json();
    applyStyle(prediction, context);
  } catch (error) {
    console.warn("efimero: keeping the default style:", error);
  }
  measure();
  sendOnHide(endpoint, prediction, history, performance.now() - started);
  document.dispatchEvent(new CustomEvent("efimero:applied", { detail: prediction }));
  return prediction;
}
