import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError, ExitCode } from "../cli-error.js";
import { EgideApiError } from "../client/egide-api-error.js";
import { encodePath } from "../client/egide-client.js";
import { readArgumentFile } from "../input/read-argument-file.js";
import { readAllStdin } from "../input/read-stdin.js";
import { printDone } from "../output/print-done.js";
import { printJson } from "../output/print-json.js";
import { clientFor, formatOf, withNetworkOptions } from "./command-options.js";
import type { NetworkOptions } from "./command-options.js";

/** `egide policy write|read|list|delete`: ACL policies (`/v1/sys/policies/acl`). */
export function registerPolicyCommands(program: Command, ctx: CliContext): Command {
  const policy = program.command("policy").description("write, read, list and delete ACL policies");
  const path = (name: string) => `sys/policies/acl/${encodePath(name)}`;

  withNetworkOptions(policy.command("write").description("create or replace a policy from an HCL or JSON file"))
    .argument("<name>", "the policy's name")
    .argument("<file>", "the policy file, or - for stdin")
    .action(async (name: string, file: string, options: NetworkOptions) => {
      const text = file === "-" ? await readAllStdin(ctx.io.stdin) : readArgumentFile(file);
      await clientFor(options, ctx.io).put(path(name), { policy: text });
      printDone(ctx.io.stdout, formatOf(options), `Success! Uploaded policy: ${name}`, { name });
    });

  withNetworkOptions(policy.command("read").description("print a policy's text"))
    .argument("<name>", "the policy's name")
    .action(async (name: string, options: NetworkOptions) => {
      let body: { data?: { name?: string; policy?: string } } | null;
      try {
        body = (await clientFor(options, ctx.io).get<{ data?: { name?: string; policy?: string } }>(path(name))).body;
      } catch (error) {
        if (error instanceof EgideApiError && error.status === 404)
          throw new CliError(`no policy named ${JSON.stringify(name)}`, { exitCode: ExitCode.USAGE });
        throw error;
      }
      if (formatOf(options) === "json") printJson(ctx.io.stdout, body);
      else {
        const text = body?.data?.policy ?? "";
        ctx.io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
      }
    });

  withNetworkOptions(policy.command("list").description("list the policies' names")).action(async (options: NetworkOptions) => {
    const body = (await clientFor(options, ctx.io).list<{ data?: { keys?: string[] } }>("sys/policies/acl")).body;
    if (formatOf(options) === "json") printJson(ctx.io.stdout, body);
    else ctx.io.stdout.write((body?.data?.keys ?? []).map((key) => `${key}\n`).join(""));
  });

  withNetworkOptions(policy.command("delete").description("delete a policy (tokens holding it lose what it granted)"))
    .argument("<name>", "the policy's name")
    .action(async (name: string, options: NetworkOptions) => {
      await clientFor(options, ctx.io).delete(path(name));
      printDone(ctx.io.stdout, formatOf(options), `Success! Deleted policy: ${name}`, { name });
    });

  return policy;
}
