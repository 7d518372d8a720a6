/* libFuzzer target for the classifier's model file reader: any input is
 * either refused with a message or read into a model that scores without
 * surprises (finite weights, a threshold in [0,1]), and a model that is
 * read writes back to a file that reads the same. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "models/features.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tj_model m;
	struct tj_err err = { 0 };
	if (tj_model_parse(&m, "fuzz.model", (const char *)data, size, NULL, 0,
			   &err) < 0) {
		if (!err.msg[0])
			abort(); /* a refusal must say why */
		return 0;
	}
	if (m.nfeat == 0 || m.nfeat > TJ_MODEL_MAXFEAT || m.threshold < 0 ||
	    m.threshold > 1)
		abort();
	double x[TJ_MODEL_MAXFEAT * 2] = { 0 }, p;
	int d = tj_model_decide(&m, x, 2, m.nfeat, &p);
	if (d > 1 || !(p >= 0 && p <= 1))
		abort();
	char path[] = "/tmp/fuzz-model.XXXXXX";
	int fd = mkstemp(path);
	if (fd >= 0) {
		close(fd);
		struct tj_model b;
		if (tj_model_write(&m, path, TJ_OUT_FORCE, &err) == 0) {
			if (tj_model_read(&b, path, NULL, 0, &err) < 0)
				abort(); /* what we write we must read */
			if (b.nfeat != m.nfeat ||
			    memcmp(b.coef, m.coef, m.nfeat * sizeof(double)))
				abort();
			tj_model_free(&b);
		}
		unlink(path);
	}
	tj_model_free(&m);
	/* Against this build's list (a prefix, or a `selection 1`): read, it
	 * holds every feature, scores finite rows, and what it writes reads
	 * back with the same weights. */
	if (tj_model_parse(&m, "fuzz.model", (const char *)data, size, tj_feat_names,
			   TJ_FEAT_N, &err) < 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (m.nfeat != TJ_FEAT_N)
		abort();
	double row[TJ_FEAT_N] = { 0 }, q;
	if (tj_model_decide(&m, row, 1, TJ_FEAT_N, &q) > 0 || !(q >= 0 && q <= 1))
		abort();
	char path2[] = "/tmp/fuzz-model.XXXXXX";
	int fd2 = mkstemp(path2);
	if (fd2 >= 0) {
		close(fd2);
		struct tj_model b;
		if (tj_model_write(&m, path2, TJ_OUT_FORCE, &err) == 0) {
			if (tj_model_read(&b, path2, tj_feat_names, TJ_FEAT_N, &err) < 0)
				abort();
			if (memcmp(b.w_raw, m.w_raw, TJ_FEAT_N * sizeof(double)) ||
			    memcmp(b.unused, m.unused, TJ_FEAT_N))
				abort();
			tj_model_free(&b);
		}
		unlink(path2);
	}
	tj_model_free(&m);
	return 0;
}
