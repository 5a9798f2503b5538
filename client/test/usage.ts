// How a TypeScript site uses the package; `npm run check` compiles it against dist/efimero.d.ts.
import { adapt, applyStyle, headSnippet, rate, setConsent, type InteractionLog, type Prediction } from "efimero";

const snippet: string = headSnippet({ hideMs: 800 });
const log: InteractionLog[] = [];
const prediction: Prediction | null = await adapt({
  endpoint: "https://style.example.com",
  timeoutMs: 1500,
  groups: ["theme", "font"],
  variables: ["--font-size-base"],
  consent: false,
  onApplied: (served, changed) => console.log(served.model_version, changed.length),
  onError: (error) => console.warn(error),
  onLog: (entry) => log.push(entry),
});
if (prediction) applyStyle(prediction, { prefers_reduced_motion: true }, { groups: ["density"] });
setConsent(true);
rate(4, "more contrast, please");
// A site's own style tokens name their own class groups.
void adapt({ groups: ["layout", "accent"] });
// @ts-expect-error: groups are named, not numbered
void adapt({ groups: [1] });
export { snippet };
