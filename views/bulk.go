package views

import "time"

// BulkPage is the bulk start page: a new run's form and the run history.
type BulkPage struct {
	Page
	Kinds []KindOption
	Form  BulkForm
	Runs  []RunSummary
	// Error is a whole-file problem with the upload, in plain words.
	Error   string
	MaxMB   int
	MaxRows int
	Columns map[string]string // kind -> the columns it needs, for the help text
	// SampleURL offers a ready-to-run rating file for the sandbox Zendesk;
	// "" against a real one.
	SampleURL string
	// Reference describes each action's columns and accepted values.
	Reference []ActionRef
}

// ActionRef is the bulk page's reference for one action: its columns, what
// each accepts, and a template to start from.
type ActionRef struct {
	Kind, Label string
	Template    string // the template's URL
	Columns     []ColumnRef
	// Reasons is the account's reasons for a bad rating (ratings only);
	// ReasonsNote says why it is missing or empty.
	Reasons     []ReasonRef
	ReasonsNote string
}

// ColumnRef is one column of an action.
type ColumnRef struct {
	Name     string
	Required bool
	Accepts  string
}

// ReasonRef is one reason for a bad rating.
type ReasonRef struct {
	Code int
	Name string
}

// KindOption is one action a bulk run can take.
type KindOption struct {
	Value string
	Label string
}

// BulkForm is what was typed in the upload form.
type BulkForm struct {
	Kind   string
	Pasted string
}

// RunSummary is one run in the history.
type RunSummary struct {
	ID        int64
	CreatedAt time.Time
	Admin     string
	FileName  string
	Kind      string
	State     string
	Total     int
	Done      int
	Failed    int
	Skipped   int
	Invalid   int
}

// RunPage is one run: preview before confirmation, progress while it runs,
// results after.
type RunPage struct {
	Page
	Run    RunSummary
	Counts RunCounts
	// Owner is true when the signed-in admin uploaded the run: only they
	// may change its columns, pre-flight, confirm or retry it.
	Owner bool
	// Preview is true while the run waits for confirmation.
	Preview bool
	// Active is true while rows are being sent (the page follows them live).
	Active bool
	// Cancellable is true while the run is under way: any admin may cancel.
	Cancellable bool
	// Cancelling is the sentence saying that rows of a cancelled run are
	// still being sent ("Cancelling… 2 rows still being sent."), "" when none.
	Cancelling string
	// Queuing says how far the background queuing of a confirmed run's
	// rows has got ("Queuing rows… 2,500 of 100,000."), "" once done.
	Queuing string
	// Finished is true when every row is in a terminal state.
	Finished bool
	// ConfirmedBy and CancelledBy name the admins who did so, "" for nobody.
	ConfirmedBy, CancelledBy string
	ConfirmedAt, CancelledAt time.Time

	PausedReason string
	Preflighted  bool
	// Writes is how many Zendesk writes confirming will make.
	Writes    int
	Rows      []RowView
	RowFilter string
	// RowsURL fetches the rows section alone (RowsFragment) for the tab
	// and page shown, so the page's script can keep it current.
	RowsURL     string
	PrevURL     string
	NextURL     string
	Header      []string
	Mapping     []MappingField
	Unmapped    []string
	FirstErrors []RowView
	// FirstRefusals are valid rows the pre-flight expects Zendesk to refuse.
	FirstRefusals []RowView
	Error         string
	// Chart is a finished run's pace and outcomes; nil for none.
	Chart *Chart

	// Kinds lists the actions a preview may switch to; Kind is the run's.
	Kinds []KindOption
	Kind  string
	// MappingIncomplete is true when a required field has no column: the
	// page then gives one instruction (Error) instead of row errors.
	MappingIncomplete bool
	// Scores lists the score column's distinct values for the score
	// mapping; ScoresTooMany says the column has too many to map.
	Scores        []ScoreChoice
	ScoresTooMany bool
	// ScoreErrors is true when some rows' scores are neither good nor bad.
	ScoreErrors bool
	// SurveyScale is true when no score value is good or bad: the rows'
	// score errors are then left to the score mapping, not listed.
	SurveyScale bool
	// ScoreMap describes the run's score mapping, "" for none.
	ScoreMap string
	// LeftOut counts the rows the score mapping leaves out.
	LeftOut int
	// Accepted is how many rows the pre-flight found Zendesk would accept.
	Accepted int
	// EstimateAll and EstimateAccepted say how long sending takes at the
	// configured rate: all rows, or only those Zendesk would accept.
	EstimateAll, EstimateAccepted string
	// Repeats warn of rows already sent in earlier runs.
	Repeats []RepeatView
	// ToFix counts the rows of the rows-to-fix download.
	ToFix int
	// RetryMayPass counts the failed rows whose failure may pass;
	// RetryOthers lists (the first of) the others with their reasons,
	// RetryOthersCount counts them all.
	RetryMayPass     int
	RetryOthers      []RowView
	RetryOthersCount int
}

// ScoreChoice is one distinct score value and what it is mapped to.
type ScoreChoice struct {
	Value  string // as written in the file
	Key    string // as looked up
	Count  int
	Choice string // "good", "bad" or "" (leave out)
}

// RepeatView says that rows of this preview were already sent in an
// earlier run.
type RepeatView struct {
	RunID int64
	At    time.Time
	File  string
	Rows  int
}

// RunCounts are the live counts of a run.
type RunCounts struct {
	Total      int
	Invalid    int
	Duplicates int
	Pending    int
	Queued     int
	Done       int
	Failed     int
	Skipped    int
	Waiting    int
	Remaining  int
	// WouldFail counts rows the pre-flight expects Zendesk to refuse.
	WouldFail int
	Percent   int
	ETA       string
}

// RowView is one row of a run as shown.
type RowView struct {
	Number    int
	Cells     []string
	State     string
	Errors    []string
	Duplicate bool
	HTTP      int
	Error     string
	ZendeskID int64
	// ZendeskLabel names what ZendeskID is ("rating 9001", "request #123").
	ZendeskLabel string
	// Extra holds the cells beyond the header's width (Cells has exactly
	// one per header column).
	Extra []string
}

// MappingField is one field of the column-mapping form.
type MappingField struct {
	Field    string
	Label    string
	Required bool
	Column   int // -1 when unmapped
}

// tabName names a rows tab for tests: its filter, or "all".
func tabName(filter string) string {
	if filter == "" {
		return "all"
	}
	return filter
}
