#!/usr/bin/env node
// The package's "bin": runs the TypeScript sources of the command-line client
// through tsx, so `npx image-registry` works in a checkout without a build.
import { register } from 'tsx/esm/api';

register();
await import('./registry-cli.ts');
