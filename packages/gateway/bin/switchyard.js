#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx (no build step). Both hooks, as `node --import tsx`:
// a TypeScript config in a CommonJS package that imports `@switchyard/gateway` needs the CJS one.
import { register } from 'tsx/esm/api'
import { register as registerCjs } from 'tsx/cjs/api'
register()
registerCjs()
await import('../src/cli.ts')
