// efimero.js: the ephemeral-frontend client. A dependency-free ES module, served by the service at
// /static/efimero.js and published to npm as `efimero` (client/ builds the package from this very file).
//
//   import { adapt, rate, setConsent } from "efimero";       // or from "/static/efimero.js"
//   await adapt({ consent: false });  // predict and apply the style; nothing stored, nothing logged yet
//   setConsent(true);                 // the visitor agreed: keep history, visitor id and style, send the log
//   rate(5);                          // optional explicit rating, sent with the interaction log
//
// It collects the browser context, asks /v1/predict for a style, puts the classes on <html> and sets
// the CSS variables (only those that differ from what is already there), keeps the visitor's history,
// a random visitor id and the last served style in localStorage (only with consent), measures the
// session (duration, scroll depth, clicks, bounce) and sends the interaction log with
// navigator.sendBeacon when the page is hidden. If the service is down or slow the page keeps its
// style: nothing here ever throws into the page.
//
// The first paint: headSnippet() returns a few hundred bytes to inline in <head>. Before anything is
// painted it applies the visitor's last served style (returning visitors) or the classes that
// /v1/style.css carries (first visits); adapt() then changes only what differs. User Timing marks
// `efimero:styled` (the predicted style landed) and `efimero:hidden` (a measure: how long adapted
// regions were hidden, when the snippet hides them) are there for the site's own analytics.

/**
 * A class group of the served version's style tokens: "density", "font" and "theme" with efimero's
 * own tokens, whatever a site declared with its own (GET /v1/model lists them).
 * @typedef {string} Group
 */

/**
 * The answer of /v1/predict.
 * @typedef {object} Prediction
 * @property {string} prediction_id Id to quote in the interaction log.
 * @property {string} model_version Registry version that made the prediction.
 * @property {string} arm Traffic arm that served it (live, canary, ...).
 * @property {Record<string, string>} css_classes Class per group (density, font and theme with efimero's tokens).
 * @property {Record<string, string>} css_variables CSS custom properties with units.
 * @property {Record<string, number>} confidences Probability of the chosen class per group.
 */

/**
 * The raw browser context /v1/predict expects (the service's OpenAPI docs at /docs describe each field).
 * @typedef {object} Context
 * @property {string} local_time
 * @property {number} timezone_offset_min
 * @property {number} viewport_width
 * @property {number} viewport_height
 * @property {number} screen_width
 * @property {number} screen_height
 * @property {number} device_pixel_ratio
 * @property {number} max_touch_points
 * @property {"coarse" | "fine" | "none"} pointer
 * @property {boolean} ua_mobile
 * @property {"dark" | "light" | "no-preference"} prefers_color_scheme
 * @property {boolean} prefers_reduced_motion
 * @property {"more" | "less" | "no-preference"} prefers_contrast
 * @property {string | null} connection_effective_type
 * @property {number | null} connection_downlink_mbps
 * @property {History} history
 * @property {string | null} session_id
 * @property {string | null} visitor_id
 */

/**
 * What the client remembers about the visitor between visits (with consent only).
 * @typedef {object} History
 * @property {number} visits
 * @property {number} avg_session_duration_s
 * @property {number} total_interactions
 * @property {string | null} first_visit
 */

/**
 * The style applied to <html>, as remembered for the next visit's head snippet.
 * @typedef {object} AppliedStyle
 * @property {Record<string, string>} classes Class per group.
 * @property {Record<string, string>} variables Value per CSS custom property.
 */

/**
 * The interaction log sent to /v1/interactions (see the service's OpenAPI docs at /docs).
 * @typedef {object} InteractionLog
 * @property {string} prediction_id
 * @property {string} session_id
 * @property {number} session_duration Milliseconds.
 * @property {number} interactions_count
 * @property {number} bounce_rate
 * @property {number} scroll_depth
 * @property {number} click_through_rate
 * @property {number} page_load_time Milliseconds.
 * @property {number} rendering_time Milliseconds from asking for the style to having applied it.
 * @property {number} [first_styled_paint] Milliseconds from navigation start to the style landing (`efimero:styled`).
 * @property {number} [hidden_time] Milliseconds adapted regions were hidden (`efimero:hidden`; 0: nothing was).
 * @property {number} [user_satisfaction]
 * @property {string} [ui_preference_feedback]
 * @property {Record<string, unknown>} device_info
 * @property {Record<string, unknown> | null} network_conditions
 */

/**
 * @typedef {object} Options
 * @property {string} [endpoint] The service's URL; "" (default) for the page's own origin.
 * @property {number} [timeoutMs] Give up on the prediction after this long (default 2000): the page keeps its style.
 * @property {Group[]} [groups] Class groups to apply (default every group of the prediction).
 * @property {string[]} [variables] CSS variables to apply, e.g. ["--font-size-base"] (default all).
 * @property {boolean} [consent] Whether the visitor agreed to storage and logging (default true); see setConsent.
 * @property {(prediction: Prediction, changed: string[]) => void} [onApplied] After the style is applied; `changed` names the groups and variables that differed.
 * @property {(error: unknown) => void} [onError] When no style could be applied (service down, slow, refused).
 * @property {(log: InteractionLog) => void} [onLog] With the interaction log, as it is sent (with consent only).
 */

const HISTORY_KEY = "efimero.history";
const VISITOR_KEY = "efimero.visitor";
const STYLE_KEY = "efimero.style";
const SESSION_KEY = "efimero.session";

/** @param {Date} date */
function localTime(date) {
  // The wall-clock time as ISO 8601 without a zone: the instant shifted by the local offset, read as UTC.
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}

/** @param {string} query */
function media(query) {
  return typeof matchMedia === "function" && matchMedia(query).matches;
}

/** @param {string} key @param {any} fallback @returns {any} */
function readJSON(key, fallback) {
  try { return JSON.parse(/** @type {string} */ (localStorage.getItem(key))) ?? fallback; } catch { return fallback; }
}

/** @param {string} key @param {unknown} value */
function writeJSON(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full or disabled */ }
}

/** @param {unknown} value @param {number} max */
function wholeNumber(value, max) {
  return Number.isInteger(value) ? Math.min(Math.max(/** @type {number} */ (value), 0), max) : 0;
}

const randomId = () => crypto.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(16).slice(2)}`;

// The visit being measured and what the site said: plain variables, which a minifier can shorten.
let consented = true;
/** @type {Options} */
let hooks = {};
/** @type {string | null} */
let tabSessionId = null;
/** @type {AppliedStyle | null} */
let applied = null;
let started = 0;
let clicks = 0;
let maxScroll = 0;
let sent = false;
const clickedTargets = new Set();
/** @type {number | null} */
let rating = null;
/** @type {string | null} */
let feedback = null;

/**
 * The visitor's history, repaired field by field: the service refuses a string where a number belongs.
 * Without consent it is a first visit's: nothing is read.
 * @returns {History}
 */
export function loadHistory() {
  const stored = consented ? readJSON(HISTORY_KEY, {}) : {};
  const average = Number(stored?.avg_session_duration_s);
  const firstVisit = stored?.first_visit;
  return {
    visits: wholeNumber(stored?.visits, 10_000_000),
    avg_session_duration_s: Number.isFinite(average) ? Math.min(Math.max(average, 0), 86_400) : 0,
    total_interactions: wholeNumber(stored?.total_interactions, 10_000_000),
    first_visit: typeof firstVisit === "string" && /^20\d\d-\d\d-\d\d$/.test(firstVisit) ? firstVisit : null,
  };
}

/** The tab's session id, kept in sessionStorage: asked for only with consent. */
function sessionId() {
  try {
    tabSessionId ??= sessionStorage.getItem(SESSION_KEY) || randomId();
    sessionStorage.setItem(SESSION_KEY, tabSessionId);
  } catch { tabSessionId ??= randomId(); /* storage disabled */ }
  return tabSessionId;
}

/** The stable random id that keeps a visitor on one traffic arm; none without consent. */
function visitorId() {
  if (!consented) return null;
  let id = readJSON(VISITOR_KEY, null);
  if (typeof id !== "string" || !id) id = randomId();
  writeJSON(VISITOR_KEY, id);
  return id.slice(0, 128);
}

/**
 * The raw context that /v1/predict expects; without consent, no history and no ids.
 * @param {History} [history]
 * @returns {Context}
 */
export function collectContext(history = loadHistory()) {
  const now = new Date();
  const connection = /** @type {any} */ (navigator).connection || {};
  const pointer = media("(pointer: coarse)") ? "coarse" : media("(pointer: fine)") ? "fine" : "none";
  const uaMobile = /** @type {any} */ (navigator).userAgentData?.mobile ?? /Mobi|Android|iPhone/i.test(navigator.userAgent);
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
    session_id: consented ? sessionId() : null,
    visitor_id: visitorId(),
  };
}

/**
 * Put the predicted classes on <html> and set its variables, touching only what differs from the
 * style already there (the head snippet's, the stylesheet's), so an unchanged style costs no repaint.
 * @param {Prediction} prediction
 * @param {Pick<Context, "prefers_reduced_motion">} context
 * @param {Pick<Options, "groups" | "variables">} [choice] Which groups and variables to apply.
 * @returns {{ changed: string[], style: AppliedStyle }}
 */
export function applyStyle(prediction, context, { groups, variables } = {}) {
  const root = document.documentElement;
  /** @type {string[]} */
  const changed = [];
  /** @type {AppliedStyle} */
  const style = { classes: {}, variables: {} };
  for (const group of groups ?? Object.keys(prediction.css_classes)) {
    const name = prediction.css_classes[group];
    if (!name) continue;
    style.classes[group] = name;
    // <html data-efimero-GROUP> names the group's class, the one to replace when the group changes.
    const attribute = "data-efimero-" + group, old = root.getAttribute(attribute);
    root.setAttribute(attribute, name);
    if (root.classList.contains(name)) continue;
    if (old) root.classList.remove(old);
    root.classList.add(name);
    changed.push(group);
  }
  const wanted = { ...prediction.css_variables };
  if (context.prefers_reduced_motion && "--animation-duration" in wanted) wanted["--animation-duration"] = "0ms";
  const computed = getComputedStyle(root);
  for (const [name, value] of Object.entries(wanted)) {
    if (variables && !variables.includes(name)) continue;
    style.variables[name] = value;
    if (computed.getPropertyValue(name).trim() === value) continue;
    root.style.setProperty(name, value);
    changed.push(name);
  }
  root.dataset.efimeroVersion = prediction.model_version;
  root.dataset.efimeroPrediction = prediction.prediction_id;
  return { changed, style };
}

/**
 * The head snippet's body: applies the remembered style, else the classes /v1/style.css carries,
 * else (when the site asked for it) hides the regions marked data-efimero-hide for at most hideMs.
 * It runs as inline text (see headSnippet), so it uses nothing from this module.
 * @param {string} key @param {number} [hideMs] @param {() => void} [reveal]
 */
function restore(key, hideMs, reveal) {
  try {
    const root = document.documentElement;
    let style = JSON.parse(/** @type {string} */ (localStorage.getItem(key)));
    const computed = getComputedStyle(root);
    const classes = style ? style.classes : {};
    if (style) for (const name in style.variables) root.style.setProperty(name, style.variables[name]);
    else for (const group of computed.getPropertyValue("--efimero-groups").trim().split(/\s+/)) {
      const name = group && computed.getPropertyValue("--efimero-" + group).trim();
      if (name) style = classes[group] = name;
    }
    for (const group in classes) {
      root.classList.add(classes[group]);
      root.setAttribute("data-efimero-" + group, classes[group]);
    }
    if (style) performance.mark("efimero:styled");
    else if (hideMs && reveal) {
      root.classList.add("efimero-hiding");
      performance.mark("efimero:hide");
      setTimeout(reveal, hideMs);
    }
  } catch { /* the page keeps its default style */ }
}

/** Show what the head snippet hid, once, and measure for how long (User Timing `efimero:hidden`). */
function reveal() {
  const root = document.documentElement;
  if (!root.classList.contains("efimero-hiding")) return;
  root.classList.remove("efimero-hiding");
  try { performance.measure("efimero:hidden", "efimero:hide"); } catch { /* the site removed the mark */ }
}

/**
 * The inline <head> script that styles the first paint: put it in a plain <script> after the
 * stylesheets (after <link rel="stylesheet" href="/v1/style.css"> when the site uses it).
 * With hideMs, a first visit with neither a remembered style nor the stylesheet hides the elements
 * marked data-efimero-hide (the site's CSS: `.efimero-hiding [data-efimero-hide] { visibility: hidden }`)
 * until adapt() applies the style or hideMs pass.
 * @param {{ hideMs?: number }} [options]
 * @returns {string} JavaScript source, a few hundred bytes once minified.
 */
export function headSnippet({ hideMs = 0 } = {}) {
  const args = [JSON.stringify(STYLE_KEY), ...(hideMs > 0 ? [Math.round(hideMs), String(reveal)] : [])];
  return `(${restore})(${args.join(",")})`;
}

function scrollDepth() {
  const page = document.documentElement;
  const height = Math.max(page.scrollHeight, 1);
  return Math.min(1, (window.scrollY + window.innerHeight) / height);
}

function measure() {
  started = performance.now();
  maxScroll = scrollDepth();
  addEventListener("scroll", () => { maxScroll = Math.max(maxScroll, scrollDepth()); }, { passive: true });
  addEventListener("click", (event) => {
    clicks += 1;
    const target = /** @type {Element} */ (event.target).closest?.("a, button");
    if (target) clickedTargets.add(target);
  }, { capture: true, passive: true });
}

function pageLoadTime() {
  const [navigation] = /** @type {PerformanceNavigationTiming[]} */ (performance.getEntriesByType?.("navigation") ?? []);
  return Math.max(0, navigation && navigation.loadEventEnd > 0 ? navigation.loadEventEnd : performance.now());
}

/** @param {Prediction} prediction @param {number} renderingTime @returns {InteractionLog} */
function interactionLog(prediction, renderingTime) {
  const connection = /** @type {any} */ (navigator).connection;
  const clickable = Math.max(1, document.querySelectorAll("a, button").length);
  /** @type {InteractionLog} */
  const log = {
    prediction_id: prediction.prediction_id,
    session_id: sessionId(),
    session_duration: Math.round(performance.now() - started),
    interactions_count: clicks,
    bounce_rate: clicks === 0 && maxScroll < 0.5 ? 1 : 0,
    scroll_depth: Number(maxScroll.toFixed(4)),
    click_through_rate: Number(Math.min(1, clickedTargets.size / clickable).toFixed(4)),
    page_load_time: Math.round(pageLoadTime()),
    rendering_time: Math.round(renderingTime),
    // Whole code points: cutting inside a surrogate pair would leave text the service refuses.
    device_info: { user_agent: Array.from(navigator.userAgent).slice(0, 200).join(""), language: navigator.language },
    network_conditions: connection ? { effective_type: connection.effectiveType ?? null, rtt: connection.rtt ?? null } : null,
  };
  const [styled] = performance.getEntriesByName("efimero:styled");
  const [hidden] = performance.getEntriesByName("efimero:hidden");
  if (styled) log.first_styled_paint = Math.round(styled.startTime);
  log.hidden_time = hidden ? Math.round(hidden.duration) : 0;
  if (rating !== null) log.user_satisfaction = rating;
  if (feedback) log.ui_preference_feedback = feedback;
  return log;
}

/** Add this visit to the stored history (read again now: consent may have come during the visit). */
function rememberVisit() {
  const history = loadHistory();
  const seconds = (performance.now() - started) / 1000;
  const visits = history.visits + 1;
  writeJSON(HISTORY_KEY, {
    visits,
    avg_session_duration_s: Number(((history.avg_session_duration_s * history.visits + seconds) / visits).toFixed(1)),
    total_interactions: history.total_interactions + clicks,
    first_visit: history.first_visit ?? localTime(new Date()).slice(0, 10),
  });
}

/** Call one of the site's hooks; its errors are the site's and must not stop the client. */
function call(/** @type {Function | undefined} */ hook, /** @type {unknown[]} */ ...args) {
  try { hook?.(...args); } catch (error) { console.error("efimero: hook failed", error); }
}

/** @param {string} endpoint @param {Prediction | null} prediction @param {number} renderingTime */
function sendOnHide(endpoint, prediction, renderingTime) {
  const send = () => {
    if (sent || !consented) return;
    sent = true;
    rememberVisit();
    if (!prediction) return;
    const log = interactionLog(prediction, renderingTime);
    call(hooks.onLog, log);
    const body = new Blob([JSON.stringify(log)], { type: "application/json" });
    if (!navigator.sendBeacon?.(`${endpoint}/v1/interactions`, body)) {
      fetch(`${endpoint}/v1/interactions`, { method: "POST", body, keepalive: true }).catch(() => {});
    }
  };
  addEventListener("pagehide", send);
  addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") send(); });
}

/** With consent, keep the ids and this visit's style, which the next visit's head snippet applies. */
function keep() {
  if (!consented) return;
  sessionId();
  visitorId();
  if (applied) writeJSON(STYLE_KEY, applied);
}

/**
 * The visitor agreed (true) or withdrew (false). Agreeing keeps this visit's style for the next
 * first paint, a visitor id and the history, and sends this visit's log when the page is hidden;
 * withdrawing deletes everything the client stored and sends nothing.
 * @param {boolean} granted
 */
export function setConsent(granted) {
  consented = granted;
  try {
    if (granted) keep();
    else {
      for (const key of [HISTORY_KEY, VISITOR_KEY, STYLE_KEY]) localStorage.removeItem(key);
      sessionStorage.removeItem(SESSION_KEY);
    }
  } catch { /* storage disabled: nothing was stored */ }
}

/**
 * An explicit rating (1–5) and optional feedback, sent with the interaction log.
 * @param {number} stars @param {string | null} [text]
 */
export function rate(stars, text = null) {
  rating = Math.min(5, Math.max(1, Math.round(stars)));
  feedback = text;
}

/**
 * Predict and apply this visitor's style, then measure the session.
 * Resolves to the prediction, or null when the service could not answer in time.
 * @param {Options} [options]
 * @returns {Promise<Prediction | null>}
 */
export async function adapt(options = {}) {
  const { endpoint = "", timeoutMs = 2000, consent = true } = options;
  hooks = options;
  consented = consent;
  const started = performance.now();
  /** @type {Prediction | null} */
  let prediction = null;
  let changed = /** @type {string[]} */ ([]);
  try {
    const context = collectContext();
    const response = await fetch(`${endpoint}/v1/predict`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify(context), signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`/v1/predict answered ${response.status}`);
    prediction = /** @type {Prediction} */ (await response.json());
    ({ changed, style: applied } = applyStyle(prediction, context, options));
    if (!performance.getEntriesByName("efimero:styled").length) performance.mark("efimero:styled");
    keep();
  } catch (error) {
    console.warn("efimero: style kept", error);
    call(options.onError, error);
  }
  reveal();
  measure();
  sendOnHide(endpoint, prediction, performance.now() - started);
  if (prediction) call(options.onApplied, prediction, changed);
  document.dispatchEvent(new CustomEvent("efimero:applied", { detail: prediction }));
  return prediction;
}
