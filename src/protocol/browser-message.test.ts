import { describe, expect, it } from 'vitest'
import { decodeBrowserMessage } from './browser-message.ts'

describe('decodeBrowserMessage', () => {
  it('decodes the three browser messages of CONTRACT.md §3', () => {
    expect(decodeBrowserMessage('{"type":"subscribe","message_types":["rare","chat"]}')).toEqual({
      kind: 'subscribe',
      messageTypes: ['rare', 'chat'],
    })
    expect(decodeBrowserMessage('{"type":"request_dungeon_map","landblock":"0x1234"}')).toEqual({
      kind: 'request_dungeon_map',
      landblock: '0x1234',
    })
    expect(decodeBrowserMessage('{"player_name":"Larsson","command":"/radar start"}')).toEqual({
      kind: 'command',
      playerName: 'Larsson',
    })
  })

  it('ignores a subscribe whose message_types is not an array of strings, whole', () => {
    for (const types of ['[{"toString":1}]', '"rare"', '["rare",7]', '{"0":"rare","length":1}', 'null']) {
      expect(decodeBrowserMessage(`{"type":"subscribe","message_types":${types}}`), types).toEqual({
        kind: 'ignored',
        reason: 'bad_subscribe',
      })
    }
    expect(decodeBrowserMessage('{"type":"subscribe"}')).toEqual({ kind: 'ignored', reason: 'bad_subscribe' })
  })

  it('never lets a non-string name, command or landblock through', () => {
    for (const text of [
      '{"player_name":{"toString":1},"command":"x"}',
      '{"player_name":["Larsson"],"command":"x"}',
      '{"player_name":"Larsson","command":{"toString":1}}',
      '{"player_name":"Larsson"}',
      '{"command":"x"}',
    ]) {
      expect(decodeBrowserMessage(text), text).toEqual({ kind: 'ignored', reason: 'unrecognized' })
    }
    for (const landblock of ['{"toString":1}', '4660', 'null', '["0x1234"]']) {
      expect(decodeBrowserMessage(`{"type":"request_dungeon_map","landblock":${landblock}}`)).toEqual({
        kind: 'request_dungeon_map',
        landblock: null,
      })
    }
  })

  it('reads own keys only, never inherited ones', () => {
    expect(decodeBrowserMessage('{"player_name":"constructor","command":"toString"}')).toEqual({
      kind: 'command',
      playerName: 'constructor',
    })
    expect(decodeBrowserMessage('{"__proto__":{"type":"subscribe","message_types":[]}}')).toEqual({
      kind: 'ignored',
      reason: 'unrecognized',
    })
  })

  it('ignores text that is not a JSON object', () => {
    expect(decodeBrowserMessage('{broken')).toEqual({ kind: 'ignored', reason: 'not_json' })
    for (const text of ['[1]', '"s"', '7', 'null']) {
      expect(decodeBrowserMessage(text), text).toEqual({ kind: 'ignored', reason: 'not_object' })
    }
  })
})
