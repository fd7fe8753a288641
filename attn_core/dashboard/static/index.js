// TensorBoard's entry point for the Attention tab: TensorBoard's plugin iframe imports this
// module and calls `render()`. The page's base URL is the plugin's route prefix, so the
// relative URLs below are the plugin's own routes.
import { fetchSource, parseHash, renderApp } from "./view.js";

export async function render() {
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = "./view.css";
  document.head.append(style);
  const root = document.createElement("div");
  root.id = "attention-root";
  document.body.append(root);
  // A fragment such as `#tag=attention/dev_0&head=2` opens that selection (tests, screenshots).
  await renderApp(root, fetchSource(), parseHash(location.hash));
}
