// The example site's script: efimero from npm, with the site's consent banner and analytics hooks.
import { adapt, rate, setConsent } from "efimero";

// The site's own record of the visitor's choice (a consent platform keeps it in a real site).
const CHOICE_KEY = "trailhead.consent";

/** Show the served style in the page: every string goes in as text. */
function showStyle(prediction, changed) {
  const rows = [["model", `${prediction.model_version} (${prediction.arm})`],
    ["changed on arrival", changed.join(" ") || "nothing: the first paint was already right"],
    ...Object.entries(prediction.css_classes), ...Object.entries(prediction.css_variables)];
  document.getElementById("prediction").replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    return [dt, dd];
  }));
}

/** The site's analytics (a dataLayer, as tag managers read it). */
function track(event, detail) {
  (window.dataLayer ??= []).push({ event, ...detail });
}

function askForConsent() {
  const banner = document.getElementById("consent");
  banner.hidden = false;
  banner.addEventListener("click", (event) => {
    const answer = event.target.closest("[data-consent]")?.dataset.consent;
    if (!answer) return;
    localStorage.setItem(CHOICE_KEY, answer);
    setConsent(answer === "yes");
    banner.hidden = true;
  });
}

document.querySelectorAll("[data-rate]").forEach((button) => button.addEventListener("click", () => {
  rate(Number(button.dataset.rate));
  document.getElementById("thanks").textContent = "Thanks: sent with this visit.";
}));

const choice = localStorage.getItem(CHOICE_KEY);
if (!choice) askForConsent();
await adapt({
  consent: choice === "yes",
  onApplied: (prediction, changed) => {
    showStyle(prediction, changed);
    track("efimero_applied", { model_version: prediction.model_version, arm: prediction.arm, changed });
  },
  onError: () => track("efimero_unavailable", {}),
  onLog: (log) => track("efimero_log", { rendering_time: log.rendering_time, session_duration: log.session_duration }),
});
