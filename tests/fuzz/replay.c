/*
 * replay.c: runs a fuzz target over the files of its corpus directories
 * without libFuzzer, so that `make test` replays every input found so
 * far (with any compiler, with or without sanitizers).  Prints one TAP
 * line per directory.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int n = 0;
#ifdef CORPUS
	/* built for one target: its corpus unless told otherwise */
	char *dflt[] = { argv[0], CORPUS };
	if (argc < 2) {
		argc = 2;
		argv = dflt;
	}
#endif

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		size_t files = 0;
		if (!d) {
			printf("not ok %d - cannot open corpus %s\n", ++n, argv[i]);
			continue;
		}
		while ((e = readdir(d))) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			FILE *f = fopen(path, "rb");
			if (!f)
				continue;
			fseek(f, 0, SEEK_END);
			long len = ftell(f);
			rewind(f);
			uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
			if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len)
				LLVMFuzzerTestOneInput(buf, (size_t)len);
			free(buf);
			fclose(f);
			files++;
		}
		closedir(d);
		printf("ok %d - replayed %zu inputs of %s\n", ++n, files, argv[i]);
	}
	printf("1..%d\n", n);
	return 0;
}
