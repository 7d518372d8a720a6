# models/: the classifier's features, fitting and model files, and the
# committed default model (models/README.md).

# Where the classifier looks for models/default.model when the binary is
# not inside the source tree (models/model_path.h).
$(BUILD)/models/model_path.o: CFLAGS += -DTJ_MODELS_DIR='"$(CURDIR)/models"'

# `make models`: regenerate the training suite and refit the committed
# models, default.model and order.model (models/train-default.sh says which
# scenarios, seeds and features).
MODELS_WORK ?= $(BUILD)/models-data
models: $(TJ)
	models/train-default.sh $(TJ) $(MODELS_WORK) models
