// The alarm's sound: a short two-tone beep made with WebAudio (no file to fetch), and its
// mute toggle, remembered in this browser (localStorage).
//
// Browsers let a page make sound only after a user gesture on it (Chrome's autoplay policy:
// an AudioContext made before one starts "suspended"). A wall screen nobody touched would
// beep silently: the page says so beside the toggle, and the first click anywhere unlocks it.

const MUTED_KEY = "surveillance.alarms.muted";
const TONES_HZ = [880, 660];
const TONE_S = 0.18;
const VOLUME = 0.25;

function storedMuted() {
  try {
    return localStorage.getItem(MUTED_KEY) === "1";
  } catch {
    return false; // storage refused (private mode): not muted, and not remembered
  }
}

export class AlarmSound {
  // button: the mute toggle; note: where the page says the browser blocks the sound.
  constructor(button, note) {
    this.button = button;
    this.note = note;
    this.muted = storedMuted();
    this.beeps = 0; // beeps asked for (muted or not): for tests and wall controllers
    this.context = null;
    button.addEventListener("click", () => this.setMuted(!this.muted));
    // Any gesture unlocks the sound for the rest of the page's life.
    document.addEventListener("pointerdown", () => this._unlock(), true);
    this._render();
  }

  setMuted(muted) {
    this.muted = muted;
    try {
      localStorage.setItem(MUTED_KEY, muted ? "1" : "0");
    } catch {
      // not remembered; the toggle still works for this page
    }
    this._render();
  }

  beep() {
    this.beeps += 1;
    if (this.muted) return;
    const context = this._context();
    if (!context) return;
    if (context.state === "suspended") {
      context.resume().catch(() => {});
      if (context.state === "suspended") {
        this._blocked(true);
        return;
      }
    }
    let at = context.currentTime;
    for (const hz of TONES_HZ) {
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(VOLUME, at);
      gain.gain.exponentialRampToValueAtTime(0.001, at + TONE_S);
      tone.connect(gain).connect(context.destination);
      tone.start(at);
      tone.stop(at + TONE_S);
      at += TONE_S;
    }
  }

  _context() {
    if (!this.context) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      this.context = new Context();
      this.context.addEventListener("statechange", () => this._blocked(this.context.state === "suspended"));
    }
    return this.context;
  }

  _unlock() {
    if (this.context && this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  _blocked(blocked) {
    this.note.textContent = blocked && !this.muted
      ? "The browser blocks the alarm sound until you click on this page." : "";
  }

  _render() {
    this.button.textContent = this.muted ? "Sound off" : "Sound on";
    this.button.setAttribute("aria-pressed", this.muted ? "true" : "false");
    this.button.title = this.muted ? "Alarms are silent: click to hear them" : "Click to silence alarms";
    if (this.muted) this.note.textContent = "";
  }
}
