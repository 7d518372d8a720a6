/* What queue-select needs of the classifier family (classifier,
 * order-logit, order-align) beyond the correlator interface. */
#ifndef TJ_CLASSIFIER_H
#define TJ_CLASSIFIER_H

#include "../models/features.h"

/* st: an open classifier, order-logit or order-align state.  From now on
 * its feature pass shares the decision-free columns through memo with the
 * other states given the same memo; every one of them must be fed the
 * same messages (models/features.h, tj_feat_share). */
void tj_classifier_share_features(void *st, struct tj_feat_memo *memo);

#endif
