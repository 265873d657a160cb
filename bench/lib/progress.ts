// Progress on a TTY (cli-progress bar on stderr), plain lines otherwise, so
// that stdout carries only the results table.

import cliProgress from 'cli-progress';

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private done = 0;

  constructor(private readonly total: number) {
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { format: 'pgfeed bench {bar} {value}/{total} | {step}', stream: process.stderr, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { step: 'starting' });
    }
  }

  /** What is running now. */
  step(text: string): void {
    if (this.bar) this.bar.update(this.done, { step: text });
    else process.stderr.write(`[${this.done}/${this.total}] ${text}\n`);
  }

  /** One step finished. */
  tick(): void {
    this.done++;
    this.bar?.update(this.done);
  }

  note(text: string): void {
    if (this.bar) {
      this.bar.stop();
      process.stderr.write(`${text}\n`);
      this.bar.start(this.total, this.done, { step: text });
    } else process.stderr.write(`${text}\n`);
  }

  close(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
