// Package static holds onbehalf's hand-written CSS and JavaScript, embedded in
// the binary so the app is one file with no CDN.
package static

import "embed"

// FS holds the files served under /static/.
//
//go:embed *.css *.js *.svg
var FS embed.FS
