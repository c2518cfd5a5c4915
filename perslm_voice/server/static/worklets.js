// AudioWorklet processors of the browser client: the microphone at 16 kHz, and gapless playback
// that a flush silences within one render quantum (128 frames).

class MicProcessor extends AudioWorkletProcessor {
  // Averages the context-rate input down to 16 kHz (a box filter: enough against aliasing for
  // speech-to-text), and posts 20 ms of 16-bit PCM at a time.
  constructor() {
    super();
    this.ratio = sampleRate / 16000;
    this.acc = 0; this.count = 0; this.pos = 0;
    this.out = new Int16Array(320); this.n = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      this.acc += input[i]; this.count++; this.pos++;
      if (this.pos >= this.ratio) {
        this.pos -= this.ratio;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.out[this.n++] = v * 32767;
        this.acc = 0; this.count = 0;
        if (this.n === this.out.length) {
          this.port.postMessage(this.out.buffer, [this.out.buffer]);
          this.out = new Int16Array(320); this.n = 0;
        }
      }
    }
    return true;
  }
}

class PlayerProcessor extends AudioWorkletProcessor {
  // A queue of Float32 blocks at the context rate, played back to back. "flush" drops them all:
  // the sound stops at the next quantum. Reports how many samples were played, every ~100 ms.
  constructor() {
    super();
    this.blocks = []; this.offset = 0; this.played = 0; this.sinceReport = 0;
    this.port.onmessage = (e) => {
      if (e.data === "flush") { this.blocks = []; this.offset = 0; this.played = 0; }
      else if (e.data === "reset") { this.played = 0; }
      else this.blocks.push(e.data);
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.blocks.length) {
      const block = this.blocks[0];
      const n = Math.min(out.length - i, block.length - this.offset);
      out.set(block.subarray(this.offset, this.offset + n), i);
      i += n; this.offset += n; this.played += n;
      if (this.offset >= block.length) { this.blocks.shift(); this.offset = 0; }
    }
    out.fill(0, i);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10) {
      this.sinceReport = 0;
      this.port.postMessage({ played: this.played, idle: this.blocks.length === 0 });
    }
    return true;
  }
}

registerProcessor("mic-processor", MicProcessor);
registerProcessor("player-processor", PlayerProcessor);
