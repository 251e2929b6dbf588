package workload

import (
	"slices"
	"strings"
)

// TalkLessons are the lessons of the talk "1 Hour Dive into Asynchronous
// Rust" by the names its code uses (the Ardan-1HourAsync repository), and
// WebLesson its section on web services, which has no code of its own
// there. A workload's Lesson cites one or more of them, comma-separated, or
// starts with BeyondTheTalk.
var TalkLessons = []string{
	"hello_tokio", "tokio_join", "tokio_spawn", "tokio_yield", "tokio_select",
	"tokio_blocking", "tokio_spawn_blocking", "tokio_channels", "tokio_multi_channels",
	"thread_to_tokio", "tokio_streams", "tokio_stream_generator", "tokio_stream_file",
	"stream_adapt", "tracing_log", "tracing_json", "tracing_spans",
	"async recursion", "async traits", WebLesson,
}

// WebLesson is the talk's section "Tokio + Axum web services with
// dependency injection".
const WebLesson = "Tokio + Axum web services"

// BeyondTheTalk starts the Lesson of a workload whose subject the talk does
// not cover: "beyond the talk: shared state behind a Mutex".
const BeyondTheTalk = "beyond the talk: "

// LessonNames splits a Lesson citation into the talk's lesson names it
// cites; none for a lesson beyond the talk.
func LessonNames(lesson string) []string {
	if strings.HasPrefix(lesson, BeyondTheTalk) {
		return nil
	}
	var names []string
	for _, n := range strings.Split(lesson, ",") {
		names = append(names, strings.TrimSpace(n))
	}
	return names
}

// ValidLesson reports whether lesson cites only lessons of the talk by
// their names, or marks itself beyond the talk.
func ValidLesson(lesson string) bool {
	if strings.HasPrefix(lesson, BeyondTheTalk) {
		return len(lesson) > len(BeyondTheTalk)
	}
	names := LessonNames(lesson)
	for _, n := range names {
		if !slices.Contains(TalkLessons, n) {
			return false
		}
	}
	return len(names) > 0
}
