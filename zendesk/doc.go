// Package zendesk is a typed client for the parts of the Zendesk Support API
// that onbehalf uses. The identity a call acts as is explicit per call
// (Client.As), errors fall into kinds a caller can branch on, and every call
// honours its context.
package zendesk
