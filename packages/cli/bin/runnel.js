#!/usr/bin/env node
// The compiled CLI lives in dist/; this shim exists so that package managers can link the bin
// before the first build has run.
import { main } from '../dist/main.js';

main(process.argv).catch((error) => {
  process.stderr.write(`runnel: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
