/**
 * Runs every `packages/<name>/test/**\/*.test.ts` and `bench/test/**\/*.test.ts`
 * (the harness's own logic; never a benchmark) with node:test through tsx.
 * (Node 20's `--test` does not expand glob patterns itself.) Extra arguments
 * are passed to `node --test`, e.g. `npm run test:unit -- --test-name-pattern=merge`.
 */
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function find (dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'fixtures') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) find(p, out)
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const files: string[] = []
for (const pkg of readdirSync('packages')) {
  const dir = join('packages', pkg, 'test')
  try { if (statSync(dir).isDirectory()) find(dir, files) } catch {}
}
find(join('bench', 'test'), files)
files.sort()
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...process.argv.slice(2), ...files], { stdio: 'inherit' })
child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
