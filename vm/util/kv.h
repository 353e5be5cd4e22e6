/* The one reader of klab's line-based text files: the run state (key=value), room files (key = value,
 * # comments), a task's checks and the room state. Lines are counted from 1 (blank ones too) so that errors
 * can name them. The text is modified in place. */
#ifndef KLAB_KV_H
#define KLAB_KV_H

#include <stdbool.h>

enum kv_comments {
    KV_NO_COMMENTS,     /* '#' is data (run state: a path may hold one) */
    KV_LINE_COMMENTS,   /* a line starting with '#' is a comment */
    KV_ANY_COMMENTS,    /* '#' starts a comment anywhere */
};

struct kv_reader {
    char *next;
    unsigned lineno;    /* of the line last returned */
    enum kv_comments comments;
};

void kv_begin(struct kv_reader *r, char *text, enum kv_comments comments);
/* The next line that is not blank (after removing a comment), trimmed; NULL at the end. */
char *kv_next_line(struct kv_reader *r);
/* Splits a line at its first sep: key and value trimmed. false (line untouched) if it has none. */
bool kv_split(char *line, char sep, char **key, char **value);
/* Next "key SEP value" line; a line without sep gives *value NULL. false at the end. */
bool kv_next(struct kv_reader *r, char sep, char **key, char **value);
/* Blanks (and a '\r') removed at both ends, in place. */
char *kv_trim(char *s);

#endif
