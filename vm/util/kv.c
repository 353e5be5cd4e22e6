/* vm/util/kv.h. */
#include "util/kv.h"

#include <ctype.h>
#include <string.h>

void kv_begin(struct kv_reader *r, char *text, enum kv_comments comments)
{
    *r = (struct kv_reader){ .next = text, .comments = comments };
}

char *kv_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

char *kv_next_line(struct kv_reader *r)
{
    while (r->next) {
        char *line = r->next;
        char *nl = strchr(line, '\n');
        r->next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        if (!*line && !r->next)   /* the empty piece after a final newline is not a line */
            break;
        r->lineno++;
        char *hash = r->comments == KV_ANY_COMMENTS ? strchr(line, '#') : NULL;
        if (hash)
            *hash = '\0';
        line = kv_trim(line);
        if (!*line || (r->comments == KV_LINE_COMMENTS && *line == '#'))
            continue;
        return line;
    }
    return NULL;
}

bool kv_split(char *line, char sep, char **key, char **value)
{
    char *at = strchr(line, sep);
    if (!at)
        return false;
    *at = '\0';
    *key = kv_trim(line);
    *value = kv_trim(at + 1);
    return true;
}

bool kv_next(struct kv_reader *r, char sep, char **key, char **value)
{
    char *line = kv_next_line(r);
    if (!line)
        return false;
    if (!kv_split(line, sep, key, value)) {
        *key = line;
        *value = NULL;
    }
    return true;
}
