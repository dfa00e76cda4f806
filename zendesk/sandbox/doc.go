// Package sandbox is a faithful stand-in for one Zendesk account (OAuth and
// the Support API) for tests, benchmarks and demo mode. It follows
// ../shared/zendesk-api.md; every behaviour marked UNCONFIRMED there is a
// switch, and faults (latency, 429 bursts, 5xx, dropped connections) are
// switches too. It is only ever served on loopback.
package sandbox
