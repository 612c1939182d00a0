// Shared test helpers: paths and the vectors file.
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(packageDir, '../..');
export const samplesDir = path.resolve(repoRoot, '../shared/attestation-samples');

export function loadVectors() {
  return JSON.parse(fs.readFileSync(path.resolve(packageDir, '../../docs/test-vectors.json'), 'utf8'));
}
