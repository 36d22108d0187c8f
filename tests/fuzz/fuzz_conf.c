/*
 * fuzz_conf.c: the topic.conf parser; whatever parses must format and
 * parse back to the same configuration.
 */
#include <stdlib.h>
#include <string.h>

#include "mq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct mq_config c, d;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	mq_config_default(&c);
	if (mq_config_parse(&c, text, "fuzz") == 0) {
		char *s = mq_config_format(&c), *t = NULL;
		mq_config_default(&d);
		if (!s || mq_config_parse(&d, s, "again") < 0 || !(t = mq_config_format(&d)) || strcmp(s, t))
			abort();
		free(s);
		free(t);
	}
	free(text);
	return 0;
}
