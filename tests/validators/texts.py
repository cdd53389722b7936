"""Realistic English home-cooking Q&A paragraphs (what every validator must accept)."""

GOOD = [
    "How long should I rest a steak after grilling? Rest it for about five to ten minutes "
    "on a warm plate, loosely covered with foil. The muscle fibres relax and the juices that "
    "were pushed toward the centre spread back through the meat, so less of them ends up on "
    "the cutting board when you slice it.",

    "Why does my bread come out dense and heavy? The most common reasons are old yeast, "
    "too little kneading and not letting the dough rise long enough. Test your yeast in warm "
    "water with a pinch of sugar first; it should foam within ten minutes. Knead until the "
    "dough is smooth and springs back when you press it, then let it double in size in a "
    "warm spot before shaping.",

    "Can I substitute baking soda for baking powder? Only if the recipe has an acid such as "
    "buttermilk, yogurt or lemon juice. Baking soda needs an acid to react, while baking "
    "powder already contains one. As a rough guide, use a quarter of the amount of soda and "
    "add a little acid, but the texture and taste will change slightly.",

    "What is the best way to store fresh herbs? Treat soft herbs like basil, parsley and "
    "coriander as a bouquet: trim the stems and stand them in a glass of water. Keep basil "
    "on the counter and the others in the fridge with a loose bag over the top. Woody herbs "
    "such as rosemary and thyme last longer wrapped in a damp paper towel in the fridge.",

    "How do I keep pasta from sticking together? Use plenty of water, at least four litres "
    "for a pound of pasta, and bring it to a rolling boil before you add the pasta. Stir "
    "during the first two minutes, when the starch on the surface is stickiest. Do not add "
    "oil to the water; it only makes the sauce slide off later.",

    "Is it safe to refreeze thawed chicken? If the chicken was thawed in the refrigerator "
    "and has stayed cold, you can refreeze it within a day or two, although the texture may "
    "suffer a little. Chicken thawed in the microwave or in cold water should be cooked "
    "before you freeze it again.",

    "Why did my custard curdle? The eggs got too hot too quickly. Heat the milk separately, "
    "whisk a little of it into the beaten yolks to temper them, and then cook the mixture "
    "gently over low heat while stirring constantly. Take it off the heat as soon as it "
    "coats the back of a spoon, and strain it if a few lumps appear.",

    "What oil should I use for deep frying? Choose an oil with a high smoke point and a "
    "neutral flavour, such as peanut, sunflower or canola oil. Keep the temperature between "
    "170 and 190 degrees Celsius with a thermometer, and fry in small batches so the oil does "
    "not cool down too much.",

    "How can I make my rice less mushy? Rinse the rice until the water runs almost clear to "
    "remove surface starch, measure the water carefully and resist the urge to lift the lid. "
    "When the water is absorbed, take the pot off the heat and let it steam, covered, for "
    "ten minutes before fluffing it with a fork.",

    "Do I need to peel ginger before grating it? Not really. The skin is thin and grates "
    "away with the flesh, so for most dishes you can simply wash the root and grate it. If "
    "you prefer to peel it, scrape the skin off with the edge of a teaspoon, which wastes "
    "much less than a knife.",

    "Why are my cookies spreading so much in the oven? Butter that is too soft or melted is "
    "the usual cause, along with too little flour or a warm baking tray. Chill the dough for "
    "thirty minutes, measure the flour by weight, and always put the dough on a cool tray. "
    "Baking soda in excess also makes cookies spread and brown faster.",

    "How do I know when a cake is done? Insert a toothpick or thin skewer into the centre; "
    "it should come out clean or with a few moist crumbs. The edges will start to pull away "
    "from the tin and the top will spring back when pressed lightly. Ovens vary, so start "
    "checking five minutes before the time given in the recipe.",
]
