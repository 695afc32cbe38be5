/**
 * The byte-level half of the `LIST` support (see `list-method-filter.ts`): follows request
 * boundaries in a connection's byte stream and rewrites `LIST` request lines into `GET …list=true`
 * plus an `X-Egide-Original-Method: LIST <marker>` header. No I/O: it maps input chunks to output
 * chunks. Every step is linear in the bytes it is given: no regular expression that can
 * backtrack sees a header value.
 */
import { randomBytes } from "node:crypto";

export const MAX_HEAD_BYTES = 64 * 1024;

/** The header inserted after a rewritten request line. */
export const ORIGINAL_METHOD_HEADER = "X-Egide-Original-Method";

/**
 * The value of {@link ORIGINAL_METHOD_HEADER} this process inserts: `LIST` and a random marker
 * made at start-up, so that a client sending the header itself cannot make a request look
 * like something it was not (the audit row's method comes from it).
 */
export const ORIGINAL_METHOD_LIST = `LIST ${randomBytes(16).toString("hex")}`;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const QUESTION = 0x3f;
const AMPERSAND = 0x26;
const HASH = 0x23;

const LIST_BYTES = Buffer.from("LIST", "latin1");
const GET_SP = Buffer.from("GET ", "latin1");
const HEADER_LINE = Buffer.from(`${ORIGINAL_METHOD_HEADER}: ${ORIGINAL_METHOD_LIST}\r\n`, "latin1");
const QUERY_FIRST = Buffer.from("?list=true", "latin1");
const QUERY_NEXT = Buffer.from("&list=true", "latin1");
const QUERY_BARE = Buffer.from("list=true", "latin1");

/** The longest method kept for inspection (only `LIST` and `CONNECT` matter). */
const MAX_KEPT_METHOD = 16;
/** Content-Length values up to 15 digits (below 2^53); more is treated as malformed. */
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
/** Chunk sizes up to 12 hex digits (256 TiB); more is treated as malformed. */
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})(?:[;\t ]|$)/;

type State =
  /** Before a request line; empty lines (CR, LF) pass as llhttp skips them. */
  | "start"
  /** Reading the method token. */
  | "method"
  /** After `LIST `: the request target, until the place where `list=true` goes. */
  | "listTarget"
  /** The rest of a rewritten request line, until its LF. */
  | "listLineRest"
  /** The rest of any other request line, until its LF. */
  | "requestLine"
  /** Header lines, until the empty line. */
  | "headers"
  /** A Content-Length body. */
  | "body"
  /** A chunk-size line (with optional extensions). */
  | "chunkSize"
  /** Chunk data. */
  | "chunkData"
  /** The CRLF after chunk data. */
  | "chunkDataEnd"
  /** Trailer lines after the last chunk, until the empty line. */
  | "trailers"
  /** Everything from here on passes unchanged. */
  | "passthrough";

/** The headers that decide where a request ends. */
type FramingHeader = { name: "content-length" | "transfer-encoding" | "upgrade"; value: string };

/**
 * The byte-stream rewriter, one per connection: {@link process} takes the incoming chunks in
 * order and returns the bytes to forward; {@link end} returns what it still holds at the end.
 * It holds back at most the 4 bytes of a method that may still turn out to be `LIST`; all
 * other bytes are forwarded as soon as they arrive.
 */
export class ListRequestRewriter {
  #state: State = "start";
  /** The method token read so far (at most {@link MAX_KEPT_METHOD} characters). */
  #method = "";
  /** Whether every method byte so far matched `LIST` (those bytes are held back). */
  #candidate = false;
  /** How many bytes of `LIST` are held back. */
  #held = 0;
  /** Bytes of the current head (or trailer section, or chunk-size line). */
  #headBytes = 0;
  /** The current header, trailer or chunk-size line so far (latin1). */
  #line = "";
  #framing: FramingHeader[] = [];
  /** The framing header an obs-fold continuation line would extend. */
  #lastFraming: FramingHeader | undefined;
  /** Bytes left in a Content-Length body or in a chunk. */
  #remaining = 0;
  #sawQuery = false;
  #lastTargetByte = 0;
  #sawChunkCr = false;

  /** Whether the rewriter gave up and passes everything through from now on. */
  get passthrough(): boolean {
    return this.#state === "passthrough";
  }

  /** Takes the next incoming chunk; returns the bytes to forward, in order. */
  process(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    let from = 0; // the start of the part of `chunk` not yet forwarded
    let i = 0;
    while (i < n) {
      switch (this.#state) {
        case "passthrough":
          i = n;
          break;

        case "start": {
          const b = chunk[i]!;
          if (b === CR || b === LF) {
            i++;
          } else {
            this.#beginRequest();
          }
          break;
        }

        case "method": {
          const b = chunk[i]!;
          if (b === SP) {
            if (this.#candidate && this.#held === LIST_BYTES.length) {
              // `LIST ` complete: forward `GET ` instead of the held `LIST` and this space.
              out.push(GET_SP);
              this.#held = 0;
              this.#candidate = false;
              i++;
              from = i;
              this.#state = "listTarget";
            } else {
              this.#releaseHeld(out);
              i++;
              this.#state = "requestLine";
            }
          } else if (b === CR || b === LF) {
            this.#releaseHeld(out);
            this.#state = "passthrough";
            break;
          } else if (this.#candidate && this.#held < LIST_BYTES.length && b === LIST_BYTES[this.#held]) {
            // Still possibly `LIST`: forward what comes before and hold this byte back.
            if (i > from) out.push(chunk.subarray(from, i));
            this.#held++;
            i++;
            from = i;
          } else {
            this.#releaseHeld(out);
            i++;
          }
          if (b !== SP && this.#method.length < MAX_KEPT_METHOD) this.#method += String.fromCharCode(b);
          this.#countHead(1, out);
          break;
        }

        case "listTarget": {
          const b = chunk[i]!;
          if (b === SP || b === HT || b === CR || b === LF || b === HASH) {
            // The end of the path and query: `list=true` goes here.
            if (i > from) out.push(chunk.subarray(from, i));
            from = i;
            out.push(
              !this.#sawQuery
                ? QUERY_FIRST
                : this.#lastTargetByte === QUESTION || this.#lastTargetByte === AMPERSAND
                  ? QUERY_BARE
                  : QUERY_NEXT,
            );
            this.#state = "listLineRest";
          } else {
            if (b === QUESTION) this.#sawQuery = true;
            this.#lastTargetByte = b;
            i++;
            this.#countHead(1, out);
          }
          break;
        }

        case "listLineRest":
        case "requestLine": {
          const lf = chunk.indexOf(LF, i);
          const end = lf === -1 ? n : lf + 1;
          const within = this.#countHead(end - i, out);
          i = end;
          if (lf !== -1 && within) {
            if (this.#state === "listLineRest") {
              out.push(chunk.subarray(from, end));
              from = end;
              out.push(HEADER_LINE);
            }
            this.#line = "";
            this.#state = "headers";
          }
          break;
        }

        case "headers":
        case "trailers":
        case "chunkSize": {
          const lf = chunk.indexOf(LF, i);
          const end = lf === -1 ? n : lf;
          this.#line += chunk.toString("latin1", i, end);
          const within = this.#countHead(end - i + (lf === -1 ? 0 : 1), out);
          i = lf === -1 ? n : lf + 1;
          if (lf !== -1 && within) {
            const line = this.#line.endsWith("\r") ? this.#line.slice(0, -1) : this.#line;
            this.#line = "";
            if (this.#state === "headers") this.#headerLine(line);
            else if (this.#state === "trailers") this.#trailerLine(line);
            else this.#chunkSizeLine(line);
          }
          break;
        }

        case "body":
        case "chunkData": {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            if (this.#state === "body") {
              this.#state = "start";
            } else {
              this.#sawChunkCr = false;
              this.#state = "chunkDataEnd";
            }
          }
          break;
        }

        case "chunkDataEnd": {
          const b = chunk[i]!;
          if (b === CR && !this.#sawChunkCr) {
            this.#sawChunkCr = true;
            i++;
          } else if (b === LF) {
            i++;
            this.#headBytes = 0;
            this.#line = "";
            this.#state = "chunkSize";
          } else {
            this.#state = "passthrough";
          }
          break;
        }
      }
    }
    if (from < n) out.push(from === 0 ? chunk : chunk.subarray(from));
    return out;
  }

  /** At the end of the stream: the bytes still held back, if any. */
  end(): Buffer | undefined {
    const held = this.#held;
    this.#held = 0;
    this.#candidate = false;
    return held > 0 ? LIST_BYTES.subarray(0, held) : undefined;
  }

  #beginRequest(): void {
    this.#state = "method";
    this.#method = "";
    this.#candidate = true;
    this.#held = 0;
    this.#headBytes = 0;
    this.#line = "";
    this.#framing = [];
    this.#lastFraming = undefined;
    this.#remaining = 0;
    this.#sawQuery = false;
    this.#lastTargetByte = 0;
  }

  /** Forwards the held-back bytes of `LIST`: the method turned out to be something else. */
  #releaseHeld(out: Buffer[]): void {
    if (this.#held > 0) out.push(LIST_BYTES.subarray(0, this.#held));
    this.#held = 0;
    this.#candidate = false;
  }

  /** Counts head bytes; false (and pass-through from now on) past {@link MAX_HEAD_BYTES}. */
  #countHead(bytes: number, out: Buffer[]): boolean {
    this.#headBytes += bytes;
    if (this.#headBytes <= MAX_HEAD_BYTES) return true;
    this.#giveUp(out);
    return false;
  }

  #giveUp(out: Buffer[]): void {
    this.#releaseHeld(out);
    this.#line = "";
    this.#state = "passthrough";
  }

  #headerLine(line: string): void {
    if (line === "") {
      this.#endOfHead();
      return;
    }
    const first = line.charCodeAt(0);
    if (first === SP || first === HT) {
      // obs-fold: a continuation of the previous header's value.
      if (this.#lastFraming) this.#lastFraming.value += ` ${trimOws(line)}`;
      return;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      this.#state = "passthrough";
      return;
    }
    const name = line.slice(0, colon).toLowerCase();
    if (name === "content-length" || name === "transfer-encoding" || name === "upgrade") {
      const header: FramingHeader = { name, value: trimOws(line.slice(colon + 1)) };
      this.#framing.push(header);
      this.#lastFraming = header;
    } else {
      this.#lastFraming = undefined;
    }
  }

  #endOfHead(): void {
    const lengths: string[] = [];
    const encodings: string[] = [];
    let upgrade = false;
    for (const { name, value } of this.#framing) {
      if (name === "content-length") lengths.push(trimOws(value));
      else if (name === "transfer-encoding") encodings.push(value);
      else upgrade = true;
    }
    this.#framing = [];
    this.#lastFraming = undefined;
    if (upgrade || this.#method === "CONNECT") {
      this.#state = "passthrough";
    } else if (encodings.length > 0) {
      const codings = encodings
        .join(",")
        .split(",")
        .map((coding) => trimOws(coding).toLowerCase())
        .filter((coding) => coding !== "");
      if (lengths.length === 0 && codings.at(-1) === "chunked") {
        this.#headBytes = 0;
        this.#state = "chunkSize";
      } else {
        // Both framings, or a final coding other than chunked: llhttp rejects the request.
        this.#state = "passthrough";
      }
    } else if (lengths.length > 0) {
      const value = lengths[0]!;
      if (lengths.length > 1 || !CONTENT_LENGTH.test(value)) {
        this.#state = "passthrough";
      } else {
        this.#remaining = Number(value);
        this.#state = this.#remaining > 0 ? "body" : "start";
      }
    } else {
      this.#state = "start";
    }
  }

  #chunkSizeLine(line: string): void {
    const match = CHUNK_SIZE.exec(line);
    if (!match) {
      this.#state = "passthrough";
      return;
    }
    const size = Number.parseInt(match[1]!, 16);
    this.#headBytes = 0;
    if (size === 0) {
      this.#state = "trailers";
    } else {
      this.#remaining = size;
      this.#state = "chunkData";
    }
  }

  #trailerLine(line: string): void {
    if (line === "") this.#state = "start";
  }
}

/**
 * `value` without leading and trailing spaces and tabs (HTTP's optional white space). A plain
 * scan: the regular expression it replaces was quadratic on a long run of inner spaces.
 */
export function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function isOws(code: number): boolean {
  return code === SP || code === HT;
}
