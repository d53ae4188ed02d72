#!/usr/bin/env node
// Entry for the installed binary: Node 24 strips the types of the TypeScript source at load time.
import '../src/cli/main.ts'
