package bulk

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/store"
)

// The choices of the score mapping for one value.
const (
	ScoreGood    = "good"
	ScoreBad     = "bad"
	ScoreLeftOut = "" // leave the row out: nothing is sent for it
)

// scoreKey is how a score cell is looked up in a score mapping: trimmed and
// in lower case, so "Satisfied" and " satisfied" are one value.
func scoreKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ScoreValue is one distinct value of a run's score column.
type ScoreValue struct {
	Value string // as first written in the file
	Key   string // scoreKey(Value)
	Count int
	// Guess is what GuessScores proposes: ScoreGood, ScoreBad or ScoreLeftOut.
	Guess string
}

// maxScoreValues bounds the distinct values the score mapping lists.
const maxScoreValues = 40

// ScoreValues lists the distinct values of a rating run's score column
// (under its current mapping), with how many rows hold each, numbers from
// the highest down and then words by count, each with GuessScores' proposal. Rows broken in
// themselves (quoting, cell count) are not counted. more is true when the
// column holds more than 40 distinct values: then it is not a score a
// mapping can sensibly translate.
func ScoreValues(ctx context.Context, db *store.DB, run *store.Run) (vals []ScoreValue, more bool, err error) {
	col, ok := MappingOf(run)[FieldScore]
	if !ok {
		return nil, false, nil
	}
	idx := map[string]int{}
	err = db.EachRunRow(ctx, run.ID, func(r store.RunRow) error {
		if len(r.Cells) != len(run.Header) || col >= len(r.Cells) {
			return nil
		}
		v := strings.TrimSpace(r.Cells[col])
		if v == "" {
			return nil
		}
		k := scoreKey(v)
		if i, ok := idx[k]; ok {
			vals[i].Count++
			return nil
		}
		if len(vals) == maxScoreValues {
			more = true
			return nil
		}
		idx[k] = len(vals)
		vals = append(vals, ScoreValue{Value: v, Key: k, Count: 1})
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	// Numbers from the highest down (5 stars first), then words by how
	// many rows hold them.
	slices.SortStableFunc(vals, func(a, b ScoreValue) int {
		na, _, aok := scoreNumber(a.Key)
		nb, _, bok := scoreNumber(b.Key)
		switch {
		case aok && bok:
			return cmp.Compare(nb, na)
		case aok != bok:
			if aok {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.Count, a.Count)
	})
	keys := make([]string, len(vals))
	for i, v := range vals {
		keys[i] = v.Key
	}
	guess := GuessScores(keys)
	for i := range vals {
		vals[i].Guess = guess[vals[i].Key]
	}
	return vals, more, nil
}

// NeedsScoreMap reports whether a score column with these values needs a
// score mapping: some value is neither good nor bad.
func NeedsScoreMap(vals []ScoreValue) bool {
	for _, v := range vals {
		if v.Key != ScoreGood && v.Key != ScoreBad {
			return true
		}
	}
	return false
}

// Words survey tools write for a good and a bad answer (after scoreKey).
var (
	goodWords = []string{"good", "satisfied", "very satisfied", "yes", "y", "👍", "positive", "happy", "very happy",
		"great", "excellent", "😀", "🙂", "😊", "thumbs up", "+1", "promoter", "true"}
	badWords = []string{"bad", "unsatisfied", "dissatisfied", "very unsatisfied", "very dissatisfied",
		"not satisfied", "no", "n", "👎", "negative", "unhappy", "very unhappy", "poor", "terrible", "😞",
		"🙁", "☹️", "😠", "thumbs down", "-1", "detractor", "false"}
)

// GuessScores proposes good, bad or leave out for each distinct score value
// (as scoreKey gives them): words a survey uses for satisfied are good and
// their opposites bad; numbers read as stars when every number is within 1
// to 5 (4–5 good, 1–2 bad, 3 left out) and as a 0–10 scale otherwise
// (9–10 good, 0–6 bad, 7–8 left out), "4/5" and "★★★★" included. Anything
// else is left out, for a person to decide.
func GuessScores(keys []string) map[string]string {
	out := make(map[string]string, len(keys))
	stars := true
	nums := map[string]float64{}
	for _, k := range keys {
		n, scale, ok := scoreNumber(k)
		if !ok {
			continue
		}
		nums[k] = n
		if scale == 10 || n < 1 || n > 5 {
			stars = false
		}
	}
	for _, k := range keys {
		switch {
		case slices.Contains(goodWords, k):
			out[k] = ScoreGood
			continue
		case slices.Contains(badWords, k):
			out[k] = ScoreBad
			continue
		}
		n, ok := nums[k]
		switch {
		case !ok:
			out[k] = ScoreLeftOut
		case stars && n >= 4, !stars && n >= 9 && n <= 10:
			out[k] = ScoreGood
		case stars && n <= 2, !stars && n >= 0 && n <= 6:
			out[k] = ScoreBad
		default:
			out[k] = ScoreLeftOut
		}
	}
	return out
}

// scoreNumber reads a numeric score: "4", "4.5", "4 stars", "4/5",
// "9/10", "★★★★". scale is 5 or 10 when the value says so, else 0.
func scoreNumber(k string) (n float64, scale int, ok bool) {
	if k != "" && strings.Trim(k, "★") == "" {
		return float64(utf8.RuneCountInString(k)), 5, true
	}
	if a, b, cut := strings.Cut(k, "/"); cut {
		switch strings.TrimSpace(b) {
		case "5":
			scale = 5
		case "10":
			scale = 10
		default:
			return 0, 0, false
		}
		k = a
	}
	k = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(k, "stars"), "star"))
	f, err := strconv.ParseFloat(strings.ReplaceAll(k, ",", "."), 64)
	if err != nil {
		return 0, 0, false
	}
	return f, scale, true
}
