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
	Writes      int
	Rows        []RowView
	RowFilter   string
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
}

// MappingField is one field of the column-mapping form.
type MappingField struct {
	Field    string
	Label    string
	Required bool
	Column   int // -1 when unmapped
}
