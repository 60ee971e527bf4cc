// Building DOM from data as text only: nothing a camera, tag or user name contains is ever
// parsed as HTML; and what the server sends is cleaned of controls that would reorder what
// is drawn (cleanStrings, in api.js and health-feed.js).

// Unicode's bidirectional embedding, override and isolate controls (UAX #9, section 2:
// U+202A-U+202E, U+2066-U+2069) reorder the text after them ("\u202Egnp.exe" is drawn
// "exe.png"). The server refuses them in new names; a name stored before that, or from
// elsewhere, shows them as U+FFFD, visibly replaced, rather than obeyed. The marks U+200E
// and U+200F are harmless and kept.
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

export function withoutBidiControls(text) {
  return String(text).replace(BIDI_CONTROLS, "\uFFFD");
}

// Every string in an answer from the server, cleaned as above (the pages' data all comes
// through here or through the health feed, so no page draws a control it did not expect).
export function cleanStrings(data) {
  if (typeof data === "string") return withoutBidiControls(data);
  if (Array.isArray(data)) return data.map(cleanStrings);
  if (data && typeof data === "object") {
    return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, cleanStrings(value)]));
  }
  return data;
}

// A name put inside other text ("Rounds: page 1/3"), set apart as <bdi> would: a
// right-to-left name does not pull the text around it into its own direction.
export function isolated(text) {
  return `\u2068${withoutBidiControls(text)}\u2069`;
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
}

export function ageText(seconds) {
  if (seconds === null || seconds === undefined) return "never seen";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}
