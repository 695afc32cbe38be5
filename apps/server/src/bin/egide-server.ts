#!/usr/bin/env node
import { runServer } from "../run-server.js";

// The binary is only argv and the exit code; everything else is runServer, which `egide server`
// shares.
const exitCode = await runServer(process.argv.slice(2));
if (exitCode !== 0) process.exitCode = exitCode;
