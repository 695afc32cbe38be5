// Runs one `egide` command in this process (the real CLI, from dist) with the unseal key on
// standard input, then prints its wall time and this process's peak resident memory, so the
// benchmark measures exactly what an operator runs.
import { Readable } from "node:stream";
import { runCli } from "../dist/run-cli.js";

const args = JSON.parse(process.argv[2]);
const stdin = Readable.from([`${process.env.EGIDE_BENCH_UNSEAL_KEY ?? ""}\n`]);
const started = performance.now();
const code = await runCli(args, { stdout: process.stdout, stderr: process.stderr, stdin, env: process.env });
const ms = performance.now() - started;
process.stdout.write(`\n@@RESULT ${JSON.stringify({ code, ms, maxRssKb: process.resourceUsage().maxRSS })}\n`);
process.exit(code);
