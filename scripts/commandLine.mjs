// The command line of a script that has a help text (chaos, the benchmarks): its options parsed
// by node:util's parseArgs, --help / -h printing the help and exiting 0, and a usage error printed
// with the help and exiting 2, as each script's help promises.
import { parseArgs } from 'node:util';

/** The values of `options` (plus `help`) from the command line; exits on --help or a usage error. */
export function parseCommandLine(name, help, options) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (error) {
    process.stderr.write(`${name}: ${error.message}\n\n${help}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${help}\n`);
    process.exit(0);
  }
  return values;
}
