import cliProgress from "cli-progress";
import type { TextSink } from "../cli-io.js";
import { formatBytes } from "../output/format-bytes.js";

/** What a long operation reports as it goes. */
export interface ProgressUpdate {
  records: number;
  bytes: number;
}

/**
 * A progress bar (cli-progress) of records and bytes on stderr, shown only when stderr is a
 * terminal: scripts and logs stay quiet. With `totalBytes` the bar shows a percentage of it;
 * without, a running count. `records: false` leaves the entry count out.
 */
export class ProgressReporter {
  readonly #bar: cliProgress.SingleBar | undefined;
  #last: ProgressUpdate = { records: 0, bytes: 0 };

  constructor(stderr: TextSink, label: string, totalBytes?: number, options: { records?: boolean } = {}) {
    if (!stderr.isTTY) return;
    // Without records (an online backup is ciphertext to this process, an upload is bytes).
    const records = options.records === false ? "" : " | {records} entries";
    const format =
      totalBytes === undefined
        ? `${label}${records} | {size}`
        : `${label} [{bar}] {percentage}%${records} | {size} of ${formatBytes(totalBytes)}`;
    this.#bar = new cliProgress.SingleBar(
      {
        format,
        stream: stderr as NodeJS.WritableStream & { isTTY: true },
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(totalBytes ?? 1, 0, { records: 0, size: formatBytes(0) });
  }

  /** Moves the bar. */
  update(progress: ProgressUpdate): void {
    this.#last = progress;
    this.#bar?.update(progress.bytes, { records: progress.records, size: formatBytes(progress.bytes) });
  }

  /** Ends the bar (also after a failure). */
  stop(): void {
    if (!this.#bar) return;
    this.#bar.update(this.#last.bytes, { records: this.#last.records, size: formatBytes(this.#last.bytes) });
    this.#bar.stop();
  }
}

/**
 * One {@link ProgressReporter} per phase of a command (Verifying, then Restoring; Copying, then
 * Verifying …): a new bar starts whenever the label changes, and the previous one is ended.
 */
export class PhasedProgress {
  readonly #stderr: TextSink;
  readonly #totalBytes: number | undefined;
  #label = "";
  #bar: ProgressReporter | undefined;

  constructor(stderr: TextSink, totalBytes?: number) {
    this.#stderr = stderr;
    this.#totalBytes = totalBytes;
  }

  /** Moves the bar of phase `label`, starting it first when the phase changed. */
  update(label: string, progress: ProgressUpdate, options: { records?: boolean } = {}): void {
    if (this.#bar === undefined || label !== this.#label) {
      this.#bar?.stop();
      this.#label = label;
      this.#bar = new ProgressReporter(this.#stderr, label, this.#totalBytes, options);
    }
    this.#bar.update(progress);
  }

  /** Ends the current bar (also after a failure). */
  stop(): void {
    this.#bar?.stop();
  }
}
