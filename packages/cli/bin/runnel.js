#!/usr/bin/env node
// The compiled CLI lives in dist/; this shim exists so that package managers can link the bin
// before the first build has run.
import { errorLine, main } from '../dist/main.js';

main(process.argv).catch((error) => {
  process.stderr.write(`${errorLine(error)}\n`);
  process.exit(1);
});
