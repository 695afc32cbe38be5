import { describe, expect, it } from "vitest";
import { ListRequestRewriter, MAX_HEAD_BYTES, trimOws } from "../src/http/list-request-rewriter.js";

/**
 * H1: header handling in the LIST front end must be linear in the size of the request head.
 * The trimming regular expression it used (`/^[ \t]+|[ \t]+$/g`) is quadratic in V8 on a long
 * run of inner spaces: one 60,000-space header value held the event loop for seconds. These
 * tests time the worst shapes at 8 KiB and at 64 KiB and fail unless the time grows about
 * 8-fold (linear), never 64-fold (quadratic). Ratios only: never absolute times.
 */

const SMALL = 8 * 1024;
// Just inside the rewriter's head limit, so the whole head is really processed.
const LARGE = MAX_HEAD_BYTES - 512;

/** Request heads of about `size` bytes in the shapes that stress header handling. */
const SHAPES: Record<string, (size: number) => string> = {
  "Transfer-Encoding: a, spaces, b": (size) => `PUT /v1/x HTTP/1.1\r\nTransfer-Encoding: a${" ".repeat(size)}b\r\n\r\n`,
  "Content-Length: spaces inside": (size) => `PUT /v1/x HTTP/1.1\r\nContent-Length: 1${" ".repeat(size)}2\r\n\r\n`,
  "Content-Length: tabs and spaces around": (size) =>
    `PUT /v1/x HTTP/1.1\r\nContent-Length:${" \t".repeat(size / 4)}0${"\t ".repeat(size / 4)}\r\n\r\n`,
  "Transfer-Encoding: many commas": (size) => `PUT /v1/x HTTP/1.1\r\nTransfer-Encoding: ${"a , ".repeat(size / 4)}chunked\r\n\r\n0\r\n\r\n`,
  "obs-fold continuations of a framing header": (size) =>
    `PUT /v1/x HTTP/1.1\r\nTransfer-Encoding: a\r\n${" x  \r\n".repeat(size / 6)}Host: h\r\n\r\n`,
  "many framing headers": (size) => `PUT /v1/x HTTP/1.1\r\n${"Transfer-Encoding: gzip \r\n".repeat(size / 26)}\r\n`,
  "LIST with a long target": (size) => `LIST /v1/${"a".repeat(size)}?x=${" ".repeat(4)} HTTP/1.1\r\nHost: h\r\n\r\n`,
  "one long ordinary header": (size) => `GET /v1/x HTTP/1.1\r\nX-Long: ${" ".repeat(size)}v\r\n\r\n`,
};

function processWhole(head: Buffer, byteByByte: boolean): void {
  const rewriter = new ListRequestRewriter();
  if (byteByByte) {
    for (let i = 0; i < head.length; i++) rewriter.process(head.subarray(i, i + 1));
  } else {
    rewriter.process(head);
  }
  rewriter.end();
}

/** The fastest of several timings of processing `head` (the minimum is the least noisy). */
function fastest(head: Buffer, byteByByte: boolean): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 7; round++) {
    const started = process.hrtime.bigint();
    // Repeat small runs so that each timing is long enough to measure.
    const repeats = Math.max(1, Math.round((16 * SMALL) / head.length));
    for (let i = 0; i < repeats; i++) processWhole(head, byteByByte);
    best = Math.min(best, Number(process.hrtime.bigint() - started) / repeats);
  }
  return best;
}

describe("ListRequestRewriter: linear in the size of the head", () => {
  for (const [shape, make] of Object.entries(SHAPES)) {
    for (const byteByByte of [false, true]) {
      it(`${shape}${byteByByte ? ", one byte per chunk" : ""}: 64 KiB costs about 8 times 8 KiB`, () => {
        const small = Buffer.from(make(SMALL), "latin1");
        const large = Buffer.from(make(LARGE), "latin1");
        expect(large.length).toBeLessThanOrEqual(MAX_HEAD_BYTES + 64);
        fastest(large, byteByByte); // warm up the JIT on both sizes
        fastest(small, byteByByte);
        const ratio = fastest(large, byteByByte) / fastest(small, byteByByte);
        const sizeRatio = large.length / small.length;
        // Linear gives about sizeRatio (8); quadratic would give its square (64). Allow noise.
        expect(ratio, `time ratio ${ratio.toFixed(1)} for a size ratio of ${sizeRatio.toFixed(1)}`).toBeLessThan(sizeRatio * 2.5);
      });
    }
  }
});

describe("trimOws", () => {
  it.each([
    ["", ""],
    ["   ", ""],
    ["\t a b \t", "a b"],
    ["chunked", "chunked"],
    [" \t\t chunked", "chunked"],
    ["a\t", "a"],
  ])("trims %j to %j (spaces and tabs only)", (input, output) => {
    expect(trimOws(input)).toBe(output);
  });

  it("keeps other white space, which HTTP does not treat as optional white space", () => {
    expect(trimOws("\u00a0x\r")).toBe("\u00a0x\r");
  });

  it("is linear on a long run of inner spaces (the regular expression it replaced was quadratic)", () => {
    const time = (n: number) => {
      const text = `a${" ".repeat(n)}b`;
      let best = Number.POSITIVE_INFINITY;
      for (let round = 0; round < 5; round++) {
        const started = process.hrtime.bigint();
        for (let i = 0; i < 20; i++) trimOws(text);
        best = Math.min(best, Number(process.hrtime.bigint() - started));
      }
      return best;
    };
    time(65536);
    expect(time(65536) / time(8192)).toBeLessThan(20);
  });
});
